"""Events harken emits, as frozen dataclasses.

Times are in seconds from the start of the audio stream (the first sample the recorder
received), derived from sample counts, never from the wall clock. ``utterance_id`` counts
utterances from 1 within one recorder.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ErrorEvent",
    "Event",
    "FinalPreview",
    "FinalTranscript",
    "PartialTranscript",
    "PauseEnded",
    "PauseStarted",
    "RecorderState",
    "RecordingStarted",
    "RecordingStopped",
    "SpeechEnded",
    "SpeechStarted",
    "StateChanged",
    "TranscriptionStarted",
    "WakeWordDetected",
    "WakeWordTimeout",
    "WakeWordWaiting",
    "Word",
]


class RecorderState(str, enum.Enum):
    """Lifecycle state of a recorder."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True)
class Event:
    """Base class of all events."""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict with a ``type`` key (the class name)."""
        out: dict[str, Any] = {"type": type(self).__name__}
        for name in self.__dataclass_fields__:
            out[name] = _jsonable(getattr(self, name))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Word):
        return {"start": value.start, "end": value.end, "text": value.text,
                "probability": value.probability}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return value


@dataclass(frozen=True)
class Word:
    """One recognised word with its timing."""

    start: float
    """Seconds from the start of the stream."""
    end: float
    """Seconds from the start of the stream."""
    text: str
    probability: float
    """Model confidence, 0..1."""


@dataclass(frozen=True)
class SpeechStarted(Event):
    """Voice activity began; ``start`` includes the pre-roll."""

    utterance_id: int
    start: float
    """Seconds from the start of the stream."""


@dataclass(frozen=True)
class SpeechEnded(Event):
    """Voice activity ended (the post-speech silence elapsed) or the utterance was cut."""

    utterance_id: int
    start: float
    """Seconds from the start of the stream."""
    end: float
    """Seconds from the start of the stream: the end of the last speech frame."""
    discarded: bool = False
    """True when the utterance was shorter than ``min_utterance_ms`` and is not transcribed."""


@dataclass(frozen=True)
class PauseStarted(Event):
    """Silence began inside an utterance: the recorder waits for the end of the turn
    (RealtimeSTT's turn detection start). Only with ``VadConfig.pause_events``.
    """

    utterance_id: int
    time: float
    """Seconds from the start of the stream where the voice faded (the silence counts from
    there; the event comes once the VAD hears the silence)."""


@dataclass(frozen=True)
class PauseEnded(Event):
    """The pause of the last :class:`PauseStarted` is over (RealtimeSTT's turn detection
    stop): speech resumed, or the utterance ended (then it follows its SpeechEnded).
    """

    utterance_id: int
    time: float
    """Seconds from the start of the stream: where speech resumed, or the stream position
    when the utterance ended."""
    resumed: bool
    """True when speech resumed inside the same utterance."""


@dataclass(frozen=True)
class TranscriptionStarted(Event):
    """A final transcription request for an utterance was sent to the engine."""

    utterance_id: int
    duration: float
    """Seconds of audio sent."""


@dataclass(frozen=True)
class PartialTranscript(Event):
    """Interim text while the person is still speaking.

    ``stable`` will not change any more; ``unstable`` may still change.
    """

    utterance_id: int
    stable: str
    unstable: str
    language: str | None = None
    """The language the partial pass heard (ISO code such as "zh"), when the engine says."""

    @property
    def text(self) -> str:
        """Stable and unstable text joined (no space between Chinese or Japanese text)."""
        from .text.units import join_units

        return join_units([self.stable, self.unstable]) if self.unstable else self.stable


@dataclass(frozen=True)
class FinalPreview(Event):
    """An early final's text, before the silence that ends the utterance has lasted
    (only with ``RealtimeConfig.preview_finals``). If the utterance ends there, its
    :class:`FinalTranscript` follows with this text; if the person goes on speaking, it
    never does (a later preview or final of the same utterance says more). For work worth
    starting early, such as preparing a spoken reply.
    """

    utterance_id: int
    text: str


@dataclass(frozen=True)
class FinalTranscript(Event):
    """The final text of one utterance (or one piece of an utterance split at max length)."""

    utterance_id: int
    text: str
    start: float
    """Seconds from the start of the stream."""
    end: float
    """Seconds from the start of the stream."""
    language: str | None = None
    language_probability: float | None = None
    words: tuple[Word, ...] = ()
    compute_seconds: float = 0.0
    """Seconds the engine spent on this request."""
    attempts: int = 1
    """How many times the request was sent (more than 1 after a worker restart)."""
    split: bool = False
    """True when the utterance ran past ``max_utterance_s`` and goes on in the next final."""


@dataclass(frozen=True)
class WakeWordWaiting(Event):
    """The recorder began waiting for a wake word (RealtimeSTT's wake word detection start):
    speech is ignored until one is heard.
    """

    time: float
    """Seconds from the start of the stream."""


@dataclass(frozen=True)
class WakeWordDetected(Event):
    """A wake word was heard; the next utterance (or the rest of this one) is a command."""

    word: str
    """The wake word or phrase as configured (Porcupine keyword, openWakeWord model name)."""
    time: float
    """Seconds from the start of the stream where the wake word ended (as the backend
    measures it: a frame detector's hit, or the phrase's last word)."""


@dataclass(frozen=True)
class WakeWordTimeout(Event):
    """No speech started within ``wake_timeout_s`` after the wake word; waiting again."""

    time: float
    """Seconds from the start of the stream."""


@dataclass(frozen=True)
class RecordingStarted(Event):
    """The recorder began taking audio from its source (start or resume)."""


@dataclass(frozen=True)
class RecordingStopped(Event):
    """The recorder stopped taking audio from its source (pause or close)."""


@dataclass(frozen=True)
class StateChanged(Event):
    """The recorder moved to another lifecycle state."""

    state: RecorderState


@dataclass(frozen=True)
class ErrorEvent(Event):
    """An error in a background thread or the engine process.

    ``fatal`` errors stop the recorder; the next blocking call raises ``error``.
    """

    error: BaseException = field(compare=False)
    fatal: bool = False
    where: str = ""
    """Which part failed: "engine", "source", "callback", "pipeline"."""
