"""The Silero voice activity detector (v5/v6 ONNX) run with onnxruntime, without torch.

Silero is a small recurrent network: each call takes the previous 64 samples (the context)
followed by a 512-sample frame, plus the recurrent state, and returns a speech probability
and the next state. :class:`SileroVad` keeps both between frames, so frames must come in
stream order; :meth:`SileroVad.reset` starts a new stream.

Two ONNX interfaces are recognised from the model's input names:

- ``input, state, sr -> output, stateN``: the ``silero-vad`` package's ``silero_vad.onnx``;
- ``input, h, c -> speech_probs, hn, cn``: faster-whisper's ``silero_vad_v6.onnx``.

The model file is looked up, without importing either package (``silero_vad`` imports
torch), in this order: the ``model_path`` argument; ``silero_vad/data/silero_vad.onnx``
from the ``silero-vad`` distribution; ``faster_whisper/assets/silero_vad_v6.onnx``.
onnxruntime is imported in :meth:`SileroVad.load` and runs with one intra-op and one
inter-op thread, so it does not compete with the transcription engine for cores.
Called from the pipeline thread only.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._onnx import cpu_session, find_packaged_file
from ..errors import ConfigError, LifecycleError, SileroModelNotFound
from ..units import FRAME_SAMPLES, SAMPLE_RATE
from .frames import check_frame

__all__ = ["CONTEXT_SAMPLES", "SileroModelNotFound", "SileroVad", "find_silero_model",
           "open_session"]

CONTEXT_SAMPLES = 64
"""Samples of the previous frame that precede each frame in the model input (4 ms)."""

_STATE_SIZE = 128

# (top-level package, path inside it) of the model files harken knows how to find.
_KNOWN_MODELS = (
    ("silero_vad", ("data", "silero_vad.onnx")),
    ("faster_whisper", ("assets", "silero_vad_v6.onnx")),
)


def find_silero_model() -> str:
    """Return the path of an installed Silero VAD ONNX file, importing no package.

    Returns:
        The first existing file of ``silero_vad/data/silero_vad.onnx`` (package
        ``silero-vad``) and ``faster_whisper/assets/silero_vad_v6.onnx``.

    Raises:
        SileroModelNotFound: neither package (or its model file) is installed.
    """
    path, searched = find_packaged_file(_KNOWN_MODELS)
    if path is not None:
        return path
    raise SileroModelNotFound(searched)


def open_session(model_path: str | None = None) -> Any:
    """Load the Silero model into an ``onnxruntime.InferenceSession`` (one intra-op and one
    inter-op thread, CPU). May take ~0.1 s.

    The session is stateless (the recurrent state is an input and an output of each call),
    so one session may serve many :class:`SileroVad` objects on one thread.

    Args:
        model_path: a Silero v5/v6 ONNX file; None finds the one an installed package ships.

    Raises:
        BackendNotInstalled: onnxruntime is missing.
        SileroModelNotFound: no model_path and no package that ships the model.
        ConfigError: ``model_path`` is not a file.
    """
    return cpu_session(model_path, find_silero_model, "silero", "The Silero VAD")


class SileroVad:
    """Silero VAD: a frame is speech when its probability reaches ``threshold``.

    About 0.1-0.2 ms per frame on one CPU core.

    Args:
        threshold: speech probability, between 0 and 1 (exclusive), at or above which a
            frame is speech.
        model_path: a Silero v5/v6 ONNX file; None finds the one an installed package ships.
        session: an already created ``onnxruntime.InferenceSession`` (or anything with its
            ``get_inputs()`` and ``run()``) to use instead of loading a file.

    Raises:
        ConfigError: an argument has the wrong type or range.
    """

    def __init__(self, threshold: float = 0.5, model_path: str | None = None,
                 session: Any = None) -> None:
        if (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                or not math.isfinite(threshold) or not 0.0 < threshold < 1.0):
            raise ConfigError(f"threshold must be a number between 0 and 1, got {threshold!r}")
        if model_path is not None and (not isinstance(model_path, (str, os.PathLike))
                                       or not str(model_path)):
            raise ConfigError(f"model_path must be a path to an .onnx file, got {model_path!r}")
        if session is not None and not (hasattr(session, "run") and
                                        hasattr(session, "get_inputs")):
            raise ConfigError("session must be an onnxruntime.InferenceSession (it needs "
                              f"run() and get_inputs()), got {type(session).__name__}")
        self.threshold = float(threshold)
        self.model_path = None if model_path is None else os.fspath(model_path)
        self._given_session = session
        self._session: Any = None
        self._closed = False
        self._hc = False  # True: inputs h and c; False: inputs state and sr.
        self._input = np.zeros((1, CONTEXT_SAMPLES + FRAME_SAMPLES), dtype=np.float32)
        self._state = np.zeros((2, 1, _STATE_SIZE), dtype=np.float32)
        self._h = np.zeros((1, 1, _STATE_SIZE), dtype=np.float32)
        self._c = np.zeros((1, 1, _STATE_SIZE), dtype=np.float32)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    @property
    def loaded(self) -> bool:
        """Whether the model is loaded and frames can be judged."""
        return self._session is not None

    def load(self) -> None:
        """Find the model, create the onnxruntime session and check its interface.

        Idempotent. May take ~0.1 s.

        Raises:
            BackendNotInstalled: onnxruntime is missing (and no session was given).
            SileroModelNotFound: no model_path and no package that ships the model.
            ConfigError: ``model_path`` does not exist or is not a Silero v5/v6 model.
        """
        if self._session is not None:
            return
        session = self._given_session
        if session is None:
            session = open_session(self.model_path)
        names = {i.name for i in session.get_inputs()}
        if {"input", "state", "sr"} <= names:
            self._hc = False
        elif {"input", "h", "c"} <= names:
            self._hc = True
        else:
            raise ConfigError(
                f"the ONNX model has inputs {sorted(names)}; a Silero VAD v5/v6 model needs "
                "(input, state, sr) or (input, h, c)"
            )
        self._session = session
        self._closed = False
        self.reset()

    def probability(self, frame: NDArray[np.float32]) -> float:
        """Run the model on one frame and return its speech probability.

        Args:
            frame: exactly 512 float32 samples at 16 kHz, the next frame of the stream.

        Returns:
            The speech probability, 0..1.

        Raises:
            AudioFormatError: the frame has the wrong type, dtype or length.
            LifecycleError: :meth:`load` was not called, or the detector is closed.
        """
        check_frame(frame)
        session = self._session
        if session is None:
            raise LifecycleError(self._unusable())
        buf = self._input
        buf[0, CONTEXT_SAMPLES:] = frame
        if self._hc:
            prob, self._h, self._c = session.run(None, {"input": buf, "h": self._h,
                                                        "c": self._c})
        else:
            prob, self._state = session.run(None, {"input": buf, "state": self._state,
                                                   "sr": self._sr})
        buf[0, :CONTEXT_SAMPLES] = frame[-CONTEXT_SAMPLES:]
        return float(np.asarray(prob).reshape(-1)[0])

    def is_speech(self, frame: NDArray[np.float32]) -> bool:
        """Judge one frame: its probability is at least ``threshold``.

        Args:
            frame: exactly 512 float32 samples at 16 kHz, the next frame of the stream.

        Returns:
            True for speech.

        Raises:
            AudioFormatError: the frame has the wrong type, dtype or length.
            LifecycleError: :meth:`load` was not called, or the detector is closed.
        """
        return self.probability(frame) >= self.threshold

    def skip(self, frame: NDArray[np.float32]) -> None:
        """Take a frame of the stream without running the model.

        Only the 64-sample context advances, so the next judged frame is preceded by the
        audio that really came before it. Used by :class:`~harken.vad.gated.GatedVad`.

        Args:
            frame: exactly 512 float32 samples at 16 kHz.

        Raises:
            AudioFormatError: the frame has the wrong type, dtype or length.
        """
        check_frame(frame)
        self._input[0, :CONTEXT_SAMPLES] = frame[-CONTEXT_SAMPLES:]

    def reset(self) -> None:
        """Zero the recurrent state and the context (start of a new stream)."""
        self._input.fill(0.0)
        self._state = np.zeros((2, 1, _STATE_SIZE), dtype=np.float32)
        self._h = np.zeros((1, 1, _STATE_SIZE), dtype=np.float32)
        self._c = np.zeros((1, 1, _STATE_SIZE), dtype=np.float32)

    def close(self) -> None:
        """Release the session. Idempotent; :meth:`load` may be called again."""
        self._session = None
        self._closed = True

    def _unusable(self) -> str:
        if self._closed:
            return "the Silero VAD is closed; call load() again before using it"
        return "call load() before is_speech() or probability() on the Silero VAD"

    def __repr__(self) -> str:
        return f"SileroVad(threshold={self.threshold}, model_path={self.model_path!r})"
