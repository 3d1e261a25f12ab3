"""The engine protocol and the request/result types that cross the process boundary.

Audio is float32 mono at 16 kHz. Times inside :class:`EngineOutput` are seconds from the
start of the audio handed to ``transcribe`` (the recorder shifts them to stream time).
Requests carry engine-neutral :class:`DecodeHints`; only an engine maps them to its own
decoder's arguments (the faster-whisper engine to ``WhisperModel.transcribe`` keywords).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..config import DECODE_QUALITIES, SAMPLE_RATE, Quality
from ..errors import ConfigError, HarkenError

__all__ = ["NO_WORDS", "DecodeHints", "EngineOutput", "PassInterrupted", "Quality",
           "TranscribeRequest", "TranscriptionEngine", "WordTiming"]

RequestKind = Literal["final", "partial"]

_TEXT_HINTS = ("language", "initial_prompt", "prefix", "hotwords")


@dataclass(frozen=True)
class DecodeHints:
    """How one request would like to be decoded; ``None`` leaves a choice to the engine.

    Engines honour what they can and ignore the rest (the scripted engine reads only
    ``extra``). JSON-friendly: :meth:`to_dict` is their form on the worker wire.

    Raises:
        ConfigError: a hint has the wrong type or range.
    """

    quality: Quality | None = None
    """"standard": the engine's most careful decode (faster-whisper: its own 30 s pass with
    temperature fallback); "fast": its low-latency decode (the default for live speech);
    "cheap": cheaper still, for load shedding (the fast pass in a short window, greedy).
    None: the engine's configured choice for the request kind."""
    beam_size: int | None = None
    """Beam width, 1 to 20 (1 = greedy)."""
    word_timestamps: bool | None = None
    """Whether the output should carry word timings."""
    language: str | None = None
    """ISO code such as "en"."""
    languages: tuple[str, ...] | None = None
    """With no ``language``: detect only among these codes, e.g. ``("en", "zh")`` (a JSON
    list on the wire). None: the engine's own setting."""
    initial_prompt: str | None = None
    """Text said before this audio (context, vocabulary)."""
    prefix: str | None = None
    """The start of the transcript; the decoder continues from it."""
    hotwords: str | None = None
    """Words to expect, such as names (comma-separated)."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Anything else, for user engines: JSON-friendly values under string keys. The
    faster-whisper engine reads it as per-request ``EngineConfig.options``."""

    def __post_init__(self) -> None:
        if self.quality is not None and self.quality not in DECODE_QUALITIES:
            raise ConfigError(f"quality must be None or one of {', '.join(DECODE_QUALITIES)}, "
                              f"got {self.quality!r}")
        beam = self.beam_size
        if beam is not None and (isinstance(beam, bool) or not isinstance(beam, int)
                                 or not 1 <= beam <= 20):
            raise ConfigError(f"beam_size must be None or an int from 1 to 20, got {beam!r}")
        if self.word_timestamps is not None and not isinstance(self.word_timestamps, bool):
            raise ConfigError(f"word_timestamps must be None, True or False, "
                              f"got {self.word_timestamps!r}")
        if isinstance(self.languages, list):  # the JSON form
            object.__setattr__(self, "languages", tuple(self.languages))
        if self.languages is not None and not (isinstance(self.languages, tuple) and all(
                isinstance(code, str) and code for code in self.languages)):
            raise ConfigError(f"languages must be None or a list of language codes, "
                              f"got {self.languages!r}")
        for name in _TEXT_HINTS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name} must be None or a string, got {value!r}")
        if not isinstance(self.extra, Mapping) or not all(isinstance(k, str)
                                                          for k in self.extra):
            raise ConfigError(f"extra must be a dict with string keys, got {self.extra!r}")
        object.__setattr__(self, "extra", dict(self.extra))

    def merged(self, other: DecodeHints) -> DecodeHints:
        """These hints with every hint ``other`` sets (not None) taking its place; the
        ``extra`` dicts are merged, ``other``'s keys winning.
        """
        changes: dict[str, Any] = {f.name: getattr(other, f.name)
                                   for f in dataclasses.fields(other)
                                   if f.name != "extra" and getattr(other, f.name) is not None}
        if other.extra:
            changes["extra"] = {**self.extra, **other.extra}
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form with only the hints that are set; used on the worker wire."""
        data: dict[str, Any] = {f.name: getattr(self, f.name)
                                for f in dataclasses.fields(self)
                                if f.name != "extra" and getattr(self, f.name) is not None}
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecodeHints:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: ``data`` is not a dict, has an unknown key or a bad value.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"decode hints must be a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ConfigError(f"unknown decode hint(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}")
        return cls(**data)


NO_WORDS = DecodeHints(word_timestamps=False)
"""The hints of a stream that wants no word timings (a WebSocket client's "words": false,
a phone call): the engine skips their alignment pass."""


@dataclass(frozen=True)
class WordTiming:
    """A word with times in seconds from the start of the request's audio."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class EngineOutput:
    """What an engine returns for one request."""

    text: str
    language: str | None = None
    language_probability: float | None = None
    words: tuple[WordTiming, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, used on the worker wire."""
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": self.language_probability,
            "words": [[w.start, w.end, w.text, w.probability] for w in self.words],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineOutput:
        """Inverse of :meth:`to_dict`."""
        return cls(
            text=str(data["text"]),
            language=data.get("language"),
            language_probability=data.get("language_probability"),
            words=tuple(WordTiming(float(w[0]), float(w[1]), str(w[2]), float(w[3]))
                        for w in data.get("words", ())),
        )


@dataclass(frozen=True, eq=False)
class TranscribeRequest:
    """Audio the core wants transcribed.

    ``start_sample``/``end_sample`` locate the audio in the stream (16 kHz sample indices).
    """

    request_id: int
    utterance_id: int
    kind: RequestKind
    audio: NDArray[np.float32]
    start_sample: int
    end_sample: int
    split: bool = False
    """The utterance continues after this audio (cut at max_utterance_s)."""
    hints: DecodeHints = field(default_factory=DecodeHints)
    """How this request would like to be decoded (e.g. greedy, no word timings for partials)."""

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.audio) / SAMPLE_RATE


class PassInterrupted(HarkenError):
    """A transcription pass stopped after its encoder because the engine process asked it to:
    a partial while a final is waiting, or a request cancelled meanwhile (a revoked early
    final). Engine process only: the parent sees a "failed" answer with error_type
    "PartialInterrupted" (the next partial hears the same audio and more) or "Cancelled".
    """


@runtime_checkable
class TranscriptionEngine(Protocol):
    """A speech-to-text backend, run inside the engine process.

    ``load`` may block for a long time (model load); ``transcribe`` must return fully
    materialised results (no lazy generators).
    """

    def load(self) -> None:
        """Load the model. Raises on a missing model or backend."""

    def transcribe(self, audio: NDArray[np.float32], *, kind: RequestKind = "final",
                   hints: DecodeHints | None = None) -> EngineOutput:
        """Transcribe float32 mono 16 kHz audio, following ``hints`` where the engine can."""

    def close(self) -> None:
        """Release the model."""
