"""Smart Turn v3.2 (Daily, BSD-2-Clause), an end-of-turn audio model, run with onnxruntime.

The model hears the last 8 s of an utterance, left-padded with zeros when shorter (padding
on the right makes every input sound finished), as Whisper-style log-mel features
(:mod:`harken.turn.features`), and returns P(the turn is complete). About 70 ms per call on
one core. Measured on 32 real utterances: finished ones scored above 0.5 in 29 cases, but
sentences cut after a word scored 0.5 or less in only 10, so it is one signal of
:mod:`harken.core.turn`, never the only one.

The ONNX file ships in the ``pipecat-ai`` 1.14.0 wheel (``pipecat/audio/turn/smart_turn/
data/smart-turn-v3.2-cpu.onnx``). It is found with ``importlib.util.find_spec`` without
importing pipecat (whose import pulls its own dependencies); install the wheel without them:
``pip install --no-deps pipecat-ai==1.14.0``. onnxruntime is imported in :meth:`load`.
Called from the pipeline thread only; a session may be shared between models (the server
loads one for all its sessions): the model keeps no state between calls.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._onnx import cpu_session, find_packaged_file
from ..errors import ConfigError, LifecycleError, SmartTurnNotFound
from .features import WINDOW_SAMPLES, log_mel

__all__ = ["SmartTurnModel", "SmartTurnNotFound", "find_smart_turn_model",
           "load_smart_turn_session"]


_MODEL_PARTS = ("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")


def find_smart_turn_model() -> str:
    """Return the path of the Smart Turn v3.2 ONNX file in the installed pipecat-ai wheel.

    Nothing is imported: the package is located with ``importlib.util.find_spec``.

    Raises:
        SmartTurnNotFound: pipecat-ai (or the file in it) is not installed.
    """
    path, searched = find_packaged_file([("pipecat", _MODEL_PARTS)])
    if path is not None:
        return path
    raise SmartTurnNotFound(searched)


def load_smart_turn_session(model_path: str | None = None) -> Any:
    """Create an onnxruntime session for the Smart Turn model (one intra-op thread).

    Blocks ~0.1 s. The session is stateless and may serve many :class:`SmartTurnModel`.

    Args:
        model_path: the ONNX file; None finds the one pipecat-ai ships.

    Raises:
        BackendNotInstalled: onnxruntime is missing.
        SmartTurnNotFound: no model_path and pipecat-ai is not installed.
        ConfigError: ``model_path`` is not a file.
    """
    return cpu_session(model_path, find_smart_turn_model, "turn", "Smart Turn")


class SmartTurnModel:
    """The Smart Turn v3.2 model: :meth:`predict` gives P(complete) of an utterance.

    Args:
        model_path: the ONNX file; None finds the one the pipecat-ai wheel ships.
        session: an already created ``onnxruntime.InferenceSession`` (or anything with its
            ``run()``) to use instead of loading a file.

    Raises:
        ConfigError: an argument has the wrong type.
    """

    def __init__(self, model_path: str | None = None, session: Any = None) -> None:
        if model_path is not None and (not isinstance(model_path, (str, os.PathLike))
                                       or not str(model_path)):
            raise ConfigError(f"model_path must be a path to an .onnx file, got {model_path!r}")
        if session is not None and not hasattr(session, "run"):
            raise ConfigError("session must be an onnxruntime.InferenceSession, got "
                              f"{type(session).__name__}")
        self.model_path = None if model_path is None else os.fspath(model_path)
        self._given_session = session
        self._session: Any = None
        self._input = np.zeros(WINDOW_SAMPLES, dtype=np.float32)

    @property
    def loaded(self) -> bool:
        """Whether :meth:`predict` may be called."""
        return self._session is not None

    def load(self) -> None:
        """Create (or take the given) onnxruntime session. Idempotent; blocks ~0.1 s.

        Raises:
            BackendNotInstalled: onnxruntime is missing.
            SmartTurnNotFound: no model_path and pipecat-ai is not installed.
        """
        if self._session is None:
            self._session = self._given_session or load_smart_turn_session(self.model_path)

    def predict(self, audio: NDArray[np.float32]) -> float:
        """Return P(the turn is complete), 0..1, from the last 8 s of ``audio``.

        Args:
            audio: 1-D float32 samples at 16 kHz, ending now (a short silence included).

        Raises:
            LifecycleError: :meth:`load` was not called, or the model is closed.
        """
        session = self._session
        if session is None:
            raise LifecycleError("call load() before predict() on the Smart Turn model")
        window = self._input
        tail = audio[-WINDOW_SAMPLES:]
        window[:WINDOW_SAMPLES - len(tail)] = 0.0  # left padding: silence before the speech
        window[WINDOW_SAMPLES - len(tail):] = tail
        features = log_mel(window)[None, :, :]
        (prob, *_) = session.run(None, {"input_features": features})
        return float(np.asarray(prob).reshape(-1)[0])

    def close(self) -> None:
        """Drop the session. Idempotent; :meth:`load` may be called again."""
        self._session = None

    def __repr__(self) -> str:
        return f"SmartTurnModel(model_path={self.model_path!r})"
