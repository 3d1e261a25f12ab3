"""Building a wake word backend from plain settings (imports no backend package).

Backends: ``"phrase"`` (any phrase, checked on the text of short utterances by the loaded
engine; needs nothing extra), ``"porcupine"`` (``pvporcupine==1.9.5``, built-in keywords) and
``"openwakeword"`` (``pyopen-wakeword`` tflite models). The names, aliases and keyword tables
live in :mod:`harken.wake.names`; building a backend only validates through them, and frame
detectors import their package in ``load()``. Runs wherever the recorder is built.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import WakeWordDetector
from .names import BACKENDS, check_wake_words, normalize_backend, parse_wake_words
from .openwakeword import OpenWakeWordDetector
from .phrase import PhraseWakeWord
from .porcupine import PorcupineDetector

__all__ = ["BACKENDS", "WakeBackend", "build_wake_backend", "normalize_backend",
           "parse_wake_words"]

WakeBackend = WakeWordDetector | PhraseWakeWord
"""A frame detector, or the phrase backend (which works on utterance text)."""


def build_wake_backend(backend: str, words: str | Sequence[str],
                       sensitivity: float | Sequence[float] = 0.5) -> WakeBackend:
    """Build (not load) the backend for ``words``.

    Args:
        backend: "phrase", "porcupine" or "openwakeword" (or an alias).
        words: wake words, a list or a comma-separated string.
        sensitivity: 0..1, one for all words or one per word; higher detects more and
            false-triggers more (Porcupine's sensitivity; openWakeWord threshold
            ``1 - sensitivity``; the phrase backend's share of letters that may differ).

    Raises:
        ConfigError: unknown backend, keyword or model name, or a bad sensitivity.
    """
    name, parsed, sens = check_wake_words(backend, words, sensitivity)
    if name == "porcupine":
        return PorcupineDetector(parsed, sens)
    if name == "openwakeword":
        return OpenWakeWordDetector(parsed, [min(0.99, max(0.01, 1.0 - s)) for s in sens])
    return PhraseWakeWord(parsed, sensitivity=sum(sens) / len(sens))
