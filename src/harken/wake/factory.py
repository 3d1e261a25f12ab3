"""Choosing and building a wake word backend from plain settings (pure; imports no backend).

Backends: ``"phrase"`` (any phrase, checked on the text of short utterances by the loaded
engine; needs nothing extra), ``"porcupine"`` (``pvporcupine==1.9.5``, built-in keywords) and
``"openwakeword"`` (``pyopen-wakeword`` tflite models). Building a backend only validates;
frame detectors import their package in ``load()``. Runs wherever the recorder is built.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigError
from .base import WakeWordDetector
from .openwakeword import OpenWakeWordDetector
from .phrase import PhraseWakeWord
from .porcupine import PorcupineDetector

__all__ = ["BACKENDS", "WakeBackend", "build_wake_backend", "normalize_backend",
           "parse_wake_words"]

BACKENDS = ("phrase", "porcupine", "openwakeword")
"""Canonical backend names."""

_ALIASES = {
    "phrase": "phrase", "asr": "phrase", "whisper": "phrase",
    "porcupine": "porcupine", "pvporcupine": "porcupine", "pvp": "porcupine",
    "openwakeword": "openwakeword", "oww": "openwakeword", "pyopen-wakeword": "openwakeword",
    "pyopen_wakeword": "openwakeword", "open-wakeword": "openwakeword",
}

WakeBackend = WakeWordDetector | PhraseWakeWord
"""A frame detector, or the phrase backend (which works on utterance text)."""


def normalize_backend(name: str) -> str:
    """Map a backend name or alias ("pvporcupine", "oww", ...) to its canonical name.

    Raises:
        ConfigError: an unknown name.
    """
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in _ALIASES:
        raise ConfigError(f"unknown wake word backend {name!r}; use one of "
                          f"{', '.join(BACKENDS)}")
    return _ALIASES[key]


def parse_wake_words(words: str | Sequence[str]) -> tuple[str, ...]:
    """Split ``"jarvis, computer"`` (or take a list) into clean wake words.

    Raises:
        ConfigError: no words, or a word that is not a string.
    """
    items = words.split(",") if isinstance(words, str) else list(words)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"wake words must be strings, got {item!r}")
        word = " ".join(item.split())
        if word:
            out.append(word)
    if not out:
        raise ConfigError(f"no wake word given in {words!r}; write e.g. 'jarvis' or "
                          "'hey harken, computer'")
    return tuple(out)


def _per_word(sensitivity: float | Sequence[float], n: int) -> tuple[float, ...]:
    values = ([float(sensitivity)] * n if isinstance(sensitivity, (int, float))
              else [float(s) for s in sensitivity])
    if len(values) == 1 and n > 1:
        values = values * n
    if len(values) != n or not all(0.0 <= v <= 1.0 for v in values):
        raise ConfigError(f"give one wake word sensitivity from 0 to 1, or one per wake word "
                          f"({n}), got {sensitivity!r}")
    return tuple(values)


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
    name = normalize_backend(backend)
    parsed = parse_wake_words(words)
    sens = _per_word(sensitivity, len(parsed))
    if name == "porcupine":
        return PorcupineDetector(parsed, sens)
    if name == "openwakeword":
        return OpenWakeWordDetector(parsed, [min(0.99, max(0.01, 1.0 - s)) for s in sens])
    return PhraseWakeWord(parsed, sensitivity=sum(sens) / len(sens))
