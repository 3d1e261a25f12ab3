"""Wake word names: backends and their aliases, word lists, keyword tables (pure, no I/O).

Everything a wake word setting can be checked against without building a backend: the
backend names (:data:`BACKENDS`) and their aliases, :func:`parse_wake_words`, the keywords
built into pvporcupine 1.9.5 (:data:`PORCUPINE_KEYWORDS`) and the models shipped in
pyopen-wakeword 1.1 (:data:`OPENWAKEWORD_MODELS`). :func:`check_wake_words` is the one check
that :class:`~harken.config.WakeConfig` and :func:`~harken.wake.factory.build_wake_backend`
both run, so a setting the config accepts always builds.

Imports only :mod:`harken.errors`, so the config can validate through it.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = [
    "BACKENDS",
    "OPENWAKEWORD_MODELS",
    "PORCUPINE_KEYWORDS",
    "check_wake_words",
    "is_model_file",
    "normalize",
    "normalize_backend",
    "openwakeword_model",
    "parse_wake_words",
    "per_word",
    "porcupine_keyword",
]

BACKENDS = ("phrase", "porcupine", "openwakeword")
"""Canonical backend names."""

_ALIASES = {
    "phrase": "phrase", "asr": "phrase", "whisper": "phrase",
    "porcupine": "porcupine", "pvporcupine": "porcupine", "pvp": "porcupine",
    "openwakeword": "openwakeword", "oww": "openwakeword", "pyopen-wakeword": "openwakeword",
    "pyopen_wakeword": "openwakeword", "open-wakeword": "openwakeword",
    "openwakewords": "openwakeword",
}

PORCUPINE_KEYWORDS = (
    "alexa", "americano", "blueberry", "bumblebee", "computer", "grapefruit", "grasshopper",
    "hey google", "hey siri", "jarvis", "ok google", "pico clock", "picovoice", "porcupine",
    "smart mirror", "snowboy", "terminator", "view glass",
)
"""Keywords built into pvporcupine 1.9.5."""

OPENWAKEWORD_MODELS = ("alexa", "hey_jarvis", "hey_mycroft", "hey_rhasspy", "okay_nabu")
"""Keyword models shipped in pyopen-wakeword 1.1."""


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


def per_word(sensitivity: float | Sequence[float], n: int) -> tuple[float, ...]:
    """One sensitivity (0..1) per wake word; a single number serves all ``n`` words.

    Raises:
        ConfigError: a count other than 1 or ``n``, or a value outside 0..1.
    """
    try:
        values = ([float(sensitivity)] * n if isinstance(sensitivity, (int, float))
                  else [float(s) for s in sensitivity])
    except (TypeError, ValueError):
        values = []
    if len(values) == 1 and n > 1:
        values = values * n
    if len(values) != n or not all(0.0 <= v <= 1.0 for v in values):
        raise ConfigError(f"give one wake word sensitivity from 0 to 1, or one per wake word "
                          f"({n}), got {sensitivity!r}")
    return tuple(values)


def normalize(text: str) -> str:
    """Lower-case ASCII letters and digits only: "Hey, Harken!" -> "heyharken"."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def is_model_file(word: str, suffix: str) -> bool:
    """True when ``word`` names a keyword model file (ends in ``suffix`` or holds a path)."""
    return word.endswith(suffix) or os.sep in word or "/" in word


@dataclass(frozen=True)
class _Builtins:
    """How one frame detector names its built-in keywords and its keyword files."""

    label: str  # "Porcupine keyword"
    article: str  # "a" or "an"
    suffix: str  # of keyword files
    file: str  # what a keyword file is called
    names: tuple[str, ...]
    canonical: Callable[[str], str]  # a written word -> its name in ``names``

    def check(self, word: str) -> str:
        if not isinstance(word, str):
            raise ConfigError(f"{self.article} {self.label} must be a string, got {word!r}")
        if is_model_file(word, self.suffix):
            return word
        name = self.canonical(word)
        if name not in self.names:
            raise ConfigError(
                f"{word!r} is not a built-in {self.label}; use one of {', '.join(self.names)}, "
                f"give the path of a {self.suffix} {self.file}, or use the 'phrase' backend "
                "for any phrase")
        return name


_PORCUPINE = _Builtins("Porcupine keyword", "a", ".ppn", "keyword file", PORCUPINE_KEYWORDS,
                       lambda word: " ".join(word.lower().split()))
_OPENWAKEWORD = _Builtins("openWakeWord model", "an", ".tflite", "model file",
                          OPENWAKEWORD_MODELS,
                          lambda word: "_".join(word.lower().replace("-", " ").split()))


def porcupine_keyword(word: str) -> str:
    """The name Porcupine knows ``word`` by: a built-in keyword (case and extra spaces
    ignored) or a ``.ppn`` file path, as given.

    Raises:
        ConfigError: not a string, or neither a built-in keyword nor a file path.
    """
    return _PORCUPINE.check(word)


def openwakeword_model(word: str) -> str:
    """The name openWakeWord knows ``word`` by: a built-in model ("hey jarvis" ->
    "hey_jarvis") or a ``.tflite`` file path, as given.

    Raises:
        ConfigError: not a string, or neither a built-in model nor a file path.
    """
    return _OPENWAKEWORD.check(word)


def _phrase(word: str) -> str:
    if len(normalize(word)) < 2:
        raise ConfigError(f"wake phrase {word!r} has fewer than 2 letters or digits; "
                          "write a word or phrase such as 'jarvis' or 'hey harken'")
    return word


_CHECKS = {"phrase": _phrase, "porcupine": porcupine_keyword,
           "openwakeword": openwakeword_model}


def check_wake_words(backend: str, words: str | Sequence[str],
                     sensitivity: float | Sequence[float] = 0.5,
                     ) -> tuple[str, tuple[str, ...], tuple[float, ...]]:
    """Check wake word settings the way the backend will read them.

    Args:
        backend: "phrase", "porcupine" or "openwakeword" (or an alias).
        words: wake words, a list or a comma-separated string.
        sensitivity: 0..1, one for all words or one per word.

    Returns:
        The canonical backend name, the parsed words (as written, spaces tidied) and one
        sensitivity per word.

    Raises:
        ConfigError: unknown backend, keyword or model name, or a bad sensitivity.
    """
    name = normalize_backend(backend)
    parsed = parse_wake_words(words)
    check = _CHECKS[name]
    for word in parsed:
        check(word)
    return name, parsed, per_word(sensitivity, len(parsed))
