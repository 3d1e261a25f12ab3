"""The engine protocol and the request/result types that cross the process boundary.

Audio is float32 mono at 16 kHz. Times inside :class:`EngineOutput` are seconds from the
start of the audio handed to ``transcribe`` (the recorder shifts them to stream time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["EngineOutput", "TranscribeRequest", "TranscriptionEngine", "WordTiming"]

RequestKind = Literal["final", "partial"]


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
    options: dict[str, Any] = field(default_factory=dict)
    """Per-request overrides of the engine's transcribe options (e.g. beam_size for partials)."""

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.audio) / 16000.0


@runtime_checkable
class TranscriptionEngine(Protocol):
    """A speech-to-text backend, run inside the engine process.

    ``load`` may block for a long time (model load); ``transcribe`` must return fully
    materialised results (no lazy generators).
    """

    def load(self) -> None:
        """Load the model. Raises on a missing model or backend."""

    def transcribe(self, audio: NDArray[np.float32], *, kind: RequestKind = "final",
                   options: dict[str, Any] | None = None) -> EngineOutput:
        """Transcribe float32 mono 16 kHz audio."""

    def close(self) -> None:
        """Release the model."""
