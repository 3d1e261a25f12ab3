"""openWakeWord detector through the ``pyopen-wakeword`` package (tflite models, offline).

``pyopen-wakeword`` ships openWakeWord's feature models and keyword models
(:data:`BUILTIN_MODELS`: hey_jarvis, alexa, hey_mycroft, ...) with its own TensorFlow Lite
runtime; users may also give ``.tflite`` keyword model files. openWakeWord works on 1280-sample
chunks (80 ms at 16 kHz), so the detector buffers the 512-sample frames it is given.
``pyopen_wakeword`` is imported in :meth:`OpenWakeWordDetector.load`. Runs on the recorder's
pipeline thread.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendNotInstalled, ConfigError
from .base import values_per_keyword
from .names import OPENWAKEWORD_MODELS, is_model_file, openwakeword_model

__all__ = ["BUILTIN_MODELS", "OpenWakeWordDetector"]

log = logging.getLogger(__name__)

BUILTIN_MODELS = OPENWAKEWORD_MODELS
"""Keyword models shipped in pyopen-wakeword 1.1 (the table lives in :mod:`harken.wake.names`)."""

CHUNK_SAMPLES = 1280
"""Samples per openWakeWord step (80 ms at 16 kHz)."""

_REFRACTORY_SAMPLES = 16000
"""After a hit, the same keyword is not reported again for 1 s (16000 samples): the score
stays above the threshold for several steps while the word ends."""


def _is_file(word: str) -> bool:
    return is_model_file(word, ".tflite")


class OpenWakeWordDetector:
    """Detects openWakeWord keywords.

    Args:
        models: built-in model names ("hey_jarvis"; "hey jarvis" works too) or paths of
            ``.tflite`` keyword model files.
        thresholds: score 0..1 above which a keyword counts, one per model or one for all
            (openWakeWord's usual 0.5).

    Raises:
        ConfigError: an unknown model name or a bad threshold.
    """

    def __init__(self, models: Sequence[str], thresholds: Sequence[float] | float = 0.5) -> None:
        if isinstance(models, str) or not models:
            raise ConfigError(f"models must be a non-empty list of names, got {models!r}")
        names = [openwakeword_model(word) for word in models]
        limits = values_per_keyword(
            thresholds, len(names), ok=lambda t: 0.0 < t < 1.0,
            error=f"openWakeWord needs one threshold between 0 and 1 per model ({len(names)}), "
                  f"got {thresholds!r}")
        self._names = tuple(names)
        self._thresholds = tuple(limits)
        self._features: Any = None
        self._models: list[Any] = []
        self._buffer = np.zeros(0, dtype=np.int16)
        self._position = 0  # samples processed
        self._quiet_until = [0] * len(names)

    @property
    def keywords(self) -> tuple[str, ...]:
        """Keyword names as reported by :meth:`process` (file paths as their stem)."""
        return tuple(os.path.splitext(os.path.basename(n))[0] if _is_file(n) else n
                     for n in self._names)

    def load(self) -> None:
        """Load the feature and keyword models.

        Raises:
            BackendNotInstalled: pyopen-wakeword is missing.
            ConfigError: a model file does not exist.
        """
        if self._features is not None:
            return
        try:
            from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures
        except ImportError as exc:
            raise BackendNotInstalled("pyopen-wakeword", "openwakeword",
                                      "The openWakeWord wake word backend") from exc
        for name in self._names:
            if _is_file(name) and not os.path.isfile(name):
                raise ConfigError(f"openWakeWord model file {name!r} does not exist; give "
                                  "the path of an existing .tflite keyword model")
        models: list[Any] = []
        try:
            for name in self._names:
                if _is_file(name):
                    models.append(OpenWakeWord.from_model(name))
                else:
                    models.append(OpenWakeWord.from_builtin(Model(name)))
            self._features = OpenWakeWordFeatures.from_builtin()
        except BaseException:
            for model in models:
                model.close()
            raise
        self._models = models
        log.debug("openWakeWord loaded: %s", ", ".join(self.keywords))

    def process(self, frame: NDArray[np.float32]) -> str | None:
        """Take 512 float32 samples at 16 kHz; return a keyword whose score crossed its
        threshold in the 80 ms steps this frame completed, or None.
        """
        if self._features is None:
            raise RuntimeError("OpenWakeWordDetector.process() called before load()")
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype(np.int16)
        self._buffer = np.concatenate([self._buffer, pcm])
        found: str | None = None
        while len(self._buffer) >= CHUNK_SAMPLES:
            chunk, self._buffer = self._buffer[:CHUNK_SAMPLES], self._buffer[CHUNK_SAMPLES:]
            self._position += CHUNK_SAMPLES
            for embedding in self._features.process_streaming(chunk.tobytes()):
                for i, model in enumerate(self._models):
                    for score in model.process_streaming(embedding):
                        if (score >= self._thresholds[i] and found is None
                                and self._position >= self._quiet_until[i]):
                            found = self.keywords[i]
                            self._quiet_until[i] = self._position + _REFRACTORY_SAMPLES
        return found

    def reset(self) -> None:
        """Forget the keyword models' recent context (after the stream was not heard)."""
        for model in self._models:
            model.reset()
        self._buffer = np.zeros(0, dtype=np.int16)

    def close(self) -> None:
        """Release the models. Idempotent."""
        models, self._models = self._models, []
        features, self._features = self._features, None
        for model in models:
            model.close()
        if features is not None:
            features.close()
