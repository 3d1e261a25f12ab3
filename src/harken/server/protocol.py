"""harken's own WebSocket protocol: the JSON control messages, as pure data.

One connection carries one audio stream::

    client -> server   {"type": "start", "sample_rate": 8000, "encoding": "pcm16",
                        "channels": 1, "language": "en", "partials": true,
                        "languages": ["en", "zh"], "words": true}
                       binary frames of audio in that format
                       {"type": "stop"}     flush: finals for everything sent, then "stopped"
                       {"type": "ping"}
    server -> client   {"type": "ready", "session": "...", "sample_rate": 8000}
                       {"type": "speech_started", "utterance": 1, "start": 0.52}
                       {"type": "speech_ended", "utterance": 1, "start": 0.52, "end": 2.1}
                       {"type": "partial", "utterance": 1, "stable": "...", "unstable": "...",
                        "append": "", "language": "en"}
                       {"type": "final", "utterance": 1, "text": "...", "start": 0.52,
                        "end": 2.1, "words": [...], "language": "en", "append": "..."}
                       {"type": "error", "message": "...", "code": "bad_message"}
                       {"type": "pong"}, {"type": "stopped"}

``append`` is the one append-only field: a client that renders live text by appending
appends it (see :class:`Final`); ``stable``/``unstable`` are for clients that redraw.

Times are seconds of stream time (the audio the client sent), never wall-clock time. A
malformed message is answered by an ``error`` and the session is closed.

Pure: no I/O, no clock, no threads; :func:`parse_client` / :func:`parse_server` turn text
into the dataclasses below (raising :class:`~harken.errors.ProtocolError` with a sentence
saying what was wrong) and :func:`encode` turns any of them back into text. Safe on any
thread.

It is one piece (over the ~400-line guide) because it is the whole wire schema: a client
author reads one module to learn every message, and the parse/encode pairs sit together.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ..audio.convert import ENCODINGS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from ..errors import ProtocolError
from ..events import Event, FinalTranscript, PartialTranscript, SpeechEnded, SpeechStarted

__all__ = [
    "ClientMessage",
    "Error",
    "ErrorCode",
    "Final",
    "MAX_CONTROL_BYTES",
    "Partial",
    "Ping",
    "Pong",
    "Ready",
    "ServerMessage",
    "SpeechEndedMessage",
    "SpeechStartedMessage",
    "Start",
    "Stop",
    "Stopped",
    "WordInfo",
    "encode",
    "from_event",
    "parse_client",
    "parse_server",
]

MAX_CONTROL_BYTES = 4096
"""The longest JSON control message a client may send, in bytes."""

_ENCODING_ALIASES = {"mulaw": "ulaw", "u-law": "ulaw", "mu-law": "ulaw", "a-law": "alaw",
                     "s16le": "pcm16", "f32le": "float32"}


class ErrorCode:
    """The ``code`` values of error messages (strings, stable across versions)."""

    BAD_MESSAGE = "bad_message"
    """A control message was not valid JSON, had an unknown type or bad fields."""
    BAD_AUDIO = "bad_audio"
    """Audio could not be decoded in the announced format."""
    NOT_STARTED = "not_started"
    """Audio or stop arrived before start."""
    TOO_LARGE = "too_large"
    """A message was longer than the server accepts."""
    TOO_SLOW = "too_slow"
    """The client did not read the server's messages fast enough."""
    TOO_FAST = "too_fast"
    """The client sent audio faster than the server's limit on real-time pace."""
    SERVER_BUSY = "server_busy"
    """The server has its maximum number of sessions, or its engine queue is full."""
    TIMEOUT = "timeout"
    """No valid "start" came in time after connecting, or the session sent nothing for
    the server's idle timeout."""
    ENGINE = "engine_error"
    """The engine could not transcribe an utterance (the session goes on)."""
    SHUTDOWN = "shutting_down"
    """The server is stopping."""
    INTERNAL = "internal"
    """A bug in the server; the message says what happened."""


# ---------------------------------------------------------------- client -> server


@dataclass(frozen=True)
class Start:
    """Open the audio stream: its format and the session's options."""

    sample_rate: int
    """Samples per second of the binary frames, in Hz (4000 to 384000)."""
    encoding: str = "pcm16"
    """One of pcm16 (little-endian int16), float32 (little-endian), ulaw, alaw."""
    channels: int = 1
    """Interleaved channels in each frame; they are averaged to mono."""
    language: str | None = None
    """Language code for the engine, e.g. "en"; None lets the engine decide."""
    partials: bool = True
    """Send live partial text while the person speaks."""
    languages: tuple[str, ...] = ()
    """With no ``language``: detect only among these codes, e.g. ("en", "zh"); empty: the
    server's setting."""
    words: bool = True
    """Send word timings with each final; false: finals carry ``"words": []`` and the
    engine skips its alignment pass (about 0.02 CPU s per final with tiny.en on 2 cores)."""


@dataclass(frozen=True)
class Stop:
    """End of the stream: transcribe what was sent, answer "stopped"."""


@dataclass(frozen=True)
class Ping:
    """Ask for a "pong"."""


ClientMessage: TypeAlias = "Start | Stop | Ping"


# ---------------------------------------------------------------- server -> client


@dataclass(frozen=True)
class Ready:
    """The session accepted "start" and takes audio now."""

    session: str
    sample_rate: int
    """The sample rate the server expects, in Hz (the one "start" named)."""


@dataclass(frozen=True)
class SpeechStartedMessage:
    """Voice activity began at ``start`` seconds of stream time (pre-roll included)."""

    utterance: int
    start: float


@dataclass(frozen=True)
class SpeechEndedMessage:
    """Voice activity ended; ``discarded`` utterances were too short to transcribe."""

    utterance: int
    start: float
    end: float
    discarded: bool = False


@dataclass(frozen=True)
class Partial:
    """Interim text: ``stable`` words are the live guess least likely to change (the final
    pass may still rewrite them, unless the server's ``stable_prefix`` binds the final to
    them), ``unstable`` ones change often; ``append`` is the append-only text (see
    :class:`Final`).
    """

    utterance: int
    stable: str
    unstable: str
    append: str = ""
    language: str | None = None


@dataclass(frozen=True)
class WordInfo:
    """One word of a final, times in seconds of stream time."""

    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class Final:
    """The final text of one utterance, ``start``/``end`` in seconds of stream time.

    ``append`` is the append-only text: what the client adds to the text the earlier
    ``append`` fields of this utterance said. Over an utterance, its partials' and finals'
    ``append`` values concatenate to its final ``text`` (to the finals' texts joined with
    spaces, for an utterance split at its maximum length), so a client that renders text by
    appending is never left with words the final took back.
    """

    utterance: int
    text: str
    start: float
    end: float
    words: tuple[WordInfo, ...] = ()
    language: str | None = None
    append: str = ""


@dataclass(frozen=True)
class Error:
    """Something went wrong; ``code`` is one of :class:`ErrorCode`."""

    message: str
    code: str = ErrorCode.INTERNAL


@dataclass(frozen=True)
class Pong:
    """The answer to "ping"."""


@dataclass(frozen=True)
class Stopped:
    """Every final for the audio sent before "stop" has been sent."""


ServerMessage: TypeAlias = ("Ready | SpeechStartedMessage | SpeechEndedMessage | Partial | "
                            "Final | Error | Pong | Stopped")

_TYPE_NAMES: dict[type, str] = {
    Start: "start", Stop: "stop", Ping: "ping",
    Ready: "ready", SpeechStartedMessage: "speech_started",
    SpeechEndedMessage: "speech_ended", Partial: "partial", Final: "final", Error: "error",
    Pong: "pong", Stopped: "stopped",
}


# ---------------------------------------------------------------- encoding


def encode(message: ClientMessage | ServerMessage) -> str:
    """Return the JSON text of a message (``type`` first).

    Raises:
        ProtocolError: ``message`` is not one of this module's message classes.
    """
    name = _TYPE_NAMES.get(type(message))
    if name is None:
        raise ProtocolError(f"cannot encode {type(message).__name__}: not a protocol message")
    out: dict[str, Any] = {"type": name}
    for key in message.__dataclass_fields__:
        value = getattr(message, key)
        if key == "words" and not isinstance(value, bool):  # a final's; a start's is a bool
            value = [{"start": w.start, "end": w.end, "text": w.text,
                      "probability": w.probability} for w in value]
        out[key] = value
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def from_event(event: Event) -> ServerMessage | None:
    """The message a client gets for a pipeline event, or None for internal events."""
    if isinstance(event, SpeechStarted):
        return SpeechStartedMessage(event.utterance_id, round(event.start, 3))
    if isinstance(event, SpeechEnded):
        return SpeechEndedMessage(event.utterance_id, round(event.start, 3),
                                  round(event.end, 3), event.discarded)
    if isinstance(event, PartialTranscript):
        return Partial(event.utterance_id, event.stable, event.unstable,
                       language=event.language)
    if isinstance(event, FinalTranscript):
        words = tuple(WordInfo(w.start, w.end, w.text, round(w.probability, 4))
                      for w in event.words)
        return Final(event.utterance_id, event.text, round(event.start, 3),
                     round(event.end, 3), words, event.language)
    return None


# ---------------------------------------------------------------- decoding


@dataclass
class _Fields:
    """Typed access to a decoded JSON object, with errors that name the field."""

    data: dict[str, Any]
    kind: str
    used: set[str] = field(default_factory=lambda: {"type"})

    def get(self, key: str, types: type | tuple[type, ...], default: Any = ...,
            what: str = "") -> Any:
        self.used.add(key)
        if key not in self.data or (self.data[key] is None and default is None):
            if default is ...:
                raise ProtocolError(f'"{self.kind}" needs a "{key}" field ({what})')
            return default
        value = self.data[key]
        # bool is an int in Python; only accept it where a bool is asked for.
        if isinstance(value, bool) and bool not in (types if isinstance(types, tuple)
                                                    else (types,)):
            raise ProtocolError(f'"{self.kind}" field "{key}" must be {what}, got {value!r}')
        if not isinstance(value, types):
            raise ProtocolError(f'"{self.kind}" field "{key}" must be {what}, got {value!r}')
        return value

    def number(self, key: str, default: Any = ...) -> float:
        value = self.get(key, (int, float), default, "a number")
        if not math.isfinite(value):
            raise ProtocolError(f'"{self.kind}" field "{key}" must be finite, got {value!r}')
        return float(value)

    def check_unknown(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ProtocolError(f'"{self.kind}" has unknown field(s) {", ".join(extra)}')


def _load(text: str | bytes, max_bytes: int | None) -> tuple[str, dict[str, Any]]:
    size = len(text.encode("utf-8") if isinstance(text, str) else text)
    if max_bytes is not None and size > max_bytes:
        raise ProtocolError(f"control message of {size} bytes is longer than the "
                            f"{max_bytes} bytes accepted")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"control message is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a control message must be a JSON object with a \"type\" field, "
                            f"got {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f'a control message needs a string "type" field, got {kind!r}')
    return kind, data


def parse_client(text: str | bytes, max_bytes: int | None = MAX_CONTROL_BYTES
                 ) -> ClientMessage:
    """Decode a client's JSON control message.

    Args:
        text: the text frame.
        max_bytes: the longest message accepted, in bytes (None: no limit).

    Raises:
        ProtocolError: bad JSON, an unknown type, a missing, unknown or invalid field, or a
            message longer than ``max_bytes``.
    """
    kind, data = _load(text, max_bytes)
    f = _Fields(data, kind)
    msg: ClientMessage
    if kind == "start":
        rate = f.get("sample_rate", int, what=f"an integer from {MIN_SAMPLE_RATE} to "
                                               f"{MAX_SAMPLE_RATE} Hz")
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise ProtocolError(f'"start" field "sample_rate" must be from {MIN_SAMPLE_RATE} '
                                f"to {MAX_SAMPLE_RATE} Hz, got {rate}")
        encoding = f.get("encoding", str, "pcm16", f"one of {', '.join(ENCODINGS)}").lower()
        encoding = _ENCODING_ALIASES.get(encoding, encoding)
        if encoding not in ENCODINGS:
            raise ProtocolError(f'"start" field "encoding" must be one of '
                                f"{', '.join(ENCODINGS)}, got {data['encoding']!r}")
        channels = f.get("channels", int, 1, "an integer from 1 to 8")
        if not 1 <= channels <= 8:
            raise ProtocolError(f'"start" field "channels" must be from 1 to 8, got {channels}')
        language = f.get("language", str, None, 'a language code such as "en"')
        if language is not None and not 1 <= len(language) <= 16:
            raise ProtocolError(f'"start" field "language" must be a short language code, '
                                f"got {language!r}")
        partials = f.get("partials", bool, True, "true or false")
        languages = f.get("languages", list, [], 'a list of language codes such as ["en", "zh"]')
        bad = [code for code in languages if not isinstance(code, str) or not 1 <= len(code) <= 16]
        if bad or len(languages) > 128:
            raise ProtocolError(f'"start" field "languages" must list short language codes, '
                                f"got {(bad or languages)[0]!r}")
        words = f.get("words", bool, True, "true or false")
        msg = Start(rate, encoding, channels, language, partials, tuple(languages), words)
    elif kind == "stop":
        msg = Stop()
    elif kind == "ping":
        msg = Ping()
    else:
        raise ProtocolError(f'unknown control message type {kind!r}; expected "start", '
                            '"stop" or "ping"')
    f.check_unknown()
    return msg


def parse_server(text: str | bytes) -> ServerMessage:
    """Decode a server's JSON message (for clients and tests).

    Unknown fields are ignored, so newer servers can add fields.

    Raises:
        ProtocolError: bad JSON, an unknown type, or a missing or invalid field.
    """
    kind, data = _load(text, None)
    f = _Fields(data, kind)
    if kind == "ready":
        return Ready(f.get("session", str, what="a string"),
                     f.get("sample_rate", int, what="an integer"))
    if kind == "speech_started":
        return SpeechStartedMessage(f.get("utterance", int, what="an integer"),
                                    f.number("start"))
    if kind == "speech_ended":
        return SpeechEndedMessage(f.get("utterance", int, what="an integer"),
                                  f.number("start"), f.number("end"),
                                  f.get("discarded", bool, False, "true or false"))
    if kind == "partial":
        return Partial(f.get("utterance", int, what="an integer"),
                       f.get("stable", str, what="a string"),
                       f.get("unstable", str, what="a string"),
                       f.get("append", str, "", "a string"),
                       f.get("language", str, None, "a string or null"))
    if kind == "final":
        raw_words = f.get("words", list, [], "a list")
        words: list[WordInfo] = []
        for w in raw_words:
            if not isinstance(w, dict):
                raise ProtocolError(f'"final" words must be objects, got {w!r}')
            wf = _Fields(w, "word")
            words.append(WordInfo(wf.number("start"), wf.number("end"),
                                  wf.get("text", str, what="a string"),
                                  wf.number("probability", 0.0)))
        return Final(f.get("utterance", int, what="an integer"),
                     f.get("text", str, what="a string"), f.number("start"),
                     f.number("end"), tuple(words),
                     f.get("language", str, None, "a string or null"),
                     f.get("append", str, "", "a string"))
    if kind == "error":
        return Error(f.get("message", str, what="a string"),
                     f.get("code", str, ErrorCode.INTERNAL, "a string"))
    if kind == "pong":
        return Pong()
    if kind == "stopped":
        return Stopped()
    raise ProtocolError(f"unknown server message type {kind!r}")
