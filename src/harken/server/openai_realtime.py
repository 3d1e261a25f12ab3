"""OpenAI Realtime transcription sessions: ``GET /v1/realtime?intent=transcription``.

A WebSocket endpoint that speaks the transcription-session dialect of OpenAI's Realtime API,
so the official ``openai`` package (``client.realtime.connect(extra_query={"intent":
"transcription"})``) and other Realtime clients work against harken. Both dialects are
understood:

- GA: ``session.update`` with ``{"type": "transcription", "audio": {"input": {"format",
  "transcription", "turn_detection", "noise_reduction"}}}``, answered by ``session.updated``;
  the connection opens with ``session.created``.
- Beta (``OpenAI-Beta: realtime=v1``): ``transcription_session.update`` with
  ``input_audio_format`` ("pcm16", "g711_ulaw", "g711_alaw"), ``input_audio_transcription``
  and ``turn_detection``, answered by ``transcription_session.updated``; the connection opens
  with ``transcription_session.created``.

Audio arrives as ``input_audio_buffer.append`` events (base64): pcm16 at 24 kHz by default,
G.711 mu-law / A-law at 8 kHz. harken also accepts ``{"type": "audio/pcm", "rate": R}`` for
any rate from 4000 to 384000 Hz (e.g. 16000, which needs no resampling).

Turn detection: with ``server_vad`` (the default) harken's VAD segments the stream through a
:class:`~harken.server.session.StreamSession`: ``speech_started``, then ``speech_stopped`` and
``committed`` when the silence lasts, then ``completed`` with the transcript.
``silence_duration_ms`` maps to :attr:`VadConfig.post_speech_silence_ms
<harken.config.VadConfig.post_speech_silence_ms>` and ``prefix_padding_ms`` to
``pre_roll_ms``; ``threshold`` is echoed but not used (harken's detector is not an energy
gate), and ``semantic_vad`` is served as ``server_vad``. With ``turn_detection: null`` the
client commits: every ``input_audio_buffer.commit`` makes one item whose transcript is the
speech the VAD found in the buffer since the last commit (silence is skipped).

Deltas: while the person speaks, ``conversation.item.input_audio_transcription.delta``
events carry the newly *stable* text of the live partials (words that will not change), and
when the final arrives, the rest of it. So the deltas of an item concatenate to its
``completed`` transcript whenever the final agrees with the stable words (almost always);
where it does not, no further delta is sent and ``completed`` is authoritative. Unlike
OpenAI's server, deltas can arrive before ``speech_stopped``: harken transcribes while the
person speaks. ``conversation.item.*`` creation events are not sent.

Errors have OpenAI's shape (``{"type": "error", "error": {"type", "code", "message",
"param", "event_id"}}``). Malformed JSON, unknown events, bad base64 and bad settings are
answered with an error and the session goes on; after :data:`MAX_BAD_EVENTS` malformed
events in a row, an oversize message, or audio faster than ``ServerConfig.max_audio_rate``
the connection is closed. A final the engine cannot transcribe gives
``conversation.item.input_audio_transcription.failed``.

Thread: everything runs on the server's asyncio event loop (the aiohttp handler task of each
connection plus its sender task); transcription runs in the shared engine host.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..audio.convert import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from ..config import VadConfig
from ..core.pipeline import FinalFailed, Output
from ..engine.base import TranscribeRequest
from ..errors import AudioFormatError, ConfigError, HarkenError
from ..events import (
    ErrorEvent,
    Event,
    FinalTranscript,
    PartialTranscript,
    SpeechEnded,
    SpeechStarted,
)
from .engine_host import EngineHost, ServerBusy
from .session import StreamSession
from .websocket import import_aiohttp

if TYPE_CHECKING:
    from .app import Server

__all__ = [
    "MAX_BAD_EVENTS",
    "PATH",
    "EventError",
    "RealtimeConnection",
    "RealtimeSettings",
    "add_routes",
    "parse_session_update",
    "render_session",
]

logger = logging.getLogger(__name__)

MAX_BAD_EVENTS = 32
"""Malformed client events in a row after which the connection is closed (policy)."""

PATH = "/v1/realtime"
"""The endpoint's path (clients add ``?intent=transcription``)."""

_CLOSE_GOING_AWAY = 1001
_CLOSE_POLICY = 1008
_CLOSE_TOO_BIG = 1009
_CLOSE_INTERNAL = 1011
_CLOSE_TRY_LATER = 1013
_MIN_COMMIT_S = 0.1
"""OpenAI refuses to commit less than 100 ms of audio; so does harken."""

_GA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "ulaw", "audio/pcma": "alaw"}
_BETA_FORMATS = {"pcm16": "pcm16", "g711_ulaw": "ulaw", "g711_alaw": "alaw"}


class EventError(Exception):
    """A client event harken cannot honour: becomes an OpenAI ``error`` event."""

    def __init__(self, message: str, code: str = "invalid_value",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


# ---------------------------------------------------------------- settings (pure)


@dataclass(frozen=True)
class RealtimeSettings:
    """The effective settings of one transcription session."""

    encoding: str = "pcm16"
    """pcm16 (little-endian int16), ulaw or alaw."""
    sample_rate: int = 24000
    """Samples per second of the appended audio, in Hz."""
    server_vad: bool = True
    """True: harken's VAD commits; False (``turn_detection: null``): the client commits."""
    silence_duration_ms: int = 500
    """Silence that ends an utterance, in ms (harken's ``post_speech_silence_ms``)."""
    prefix_padding_ms: int = 400
    """Audio kept before the detected speech, in ms (harken's ``pre_roll_ms``)."""
    threshold: float = 0.5
    """Echoed to the client; not used."""
    model: str = "whisper-1"
    """Echoed to the client; the server runs one engine."""
    language: str | None = None
    """Language code for the engine, e.g. "en"; None lets the engine decide."""
    prompt: str = ""
    """The engine's initial prompt."""
    noise_reduction: Any = None
    """Echoed to the client; harken applies no noise reduction."""
    include: tuple[str, ...] = ()
    """Echoed to the client."""

    @classmethod
    def defaults(cls, vad: VadConfig) -> RealtimeSettings:
        """The settings a new session starts with (server VAD with the server's timings)."""
        return cls(silence_duration_ms=vad.post_speech_silence_ms,
                   prefix_padding_ms=vad.pre_roll_ms)

    def vad_config(self, base: VadConfig) -> VadConfig:
        """``base`` with this session's silence and padding.

        Raises:
            ConfigError: a value is out of VadConfig's range.
        """
        return dataclasses.replace(base, post_speech_silence_ms=max(32, self.silence_duration_ms),
                                   pre_roll_ms=self.prefix_padding_ms)

    def engine_options(self) -> dict[str, Any]:
        """Options passed with every engine request."""
        return {"initial_prompt": self.prompt} if self.prompt else {}

    def restart_key(self) -> tuple[Any, ...]:
        """The settings that need a new pipeline when they change."""
        return (self.encoding, self.sample_rate, self.silence_duration_ms,
                self.prefix_padding_ms, self.language, self.prompt)


def _int_ms(value: object, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60_000:
        raise EventError(f"{param} must be a whole number of milliseconds from 0 to 60000, "
                         f"got {value!r}", param=param)
    return value


def _turn_detection(settings: RealtimeSettings, value: object,
                    param: str) -> RealtimeSettings:
    if value is None:
        return dataclasses.replace(settings, server_vad=False)
    if not isinstance(value, dict):
        raise EventError(f"{param} must be an object or null, got {type(value).__name__}",
                         param=param)
    kind = value.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise EventError(f"{param}.type must be 'server_vad' or 'semantic_vad' (served as "
                         f"server_vad), got {kind!r}", param=f"{param}.type")
    changes: dict[str, Any] = {"server_vad": True}
    for name in ("silence_duration_ms", "prefix_padding_ms"):
        if value.get(name) is not None:
            changes[name] = _int_ms(value[name], f"{param}.{name}")
    threshold = value.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
                or not 0.0 <= threshold <= 1.0:
            raise EventError(f"{param}.threshold must be a number from 0 to 1, got "
                             f"{threshold!r}", param=f"{param}.threshold")
        changes["threshold"] = float(threshold)
    return dataclasses.replace(settings, **changes)


def _transcription(settings: RealtimeSettings, value: object, param: str) -> RealtimeSettings:
    if value is None:
        return settings
    if not isinstance(value, dict):
        raise EventError(f"{param} must be an object or null", param=param)
    changes: dict[str, Any] = {}
    for name in ("model", "language", "prompt"):
        if name not in value:
            continue
        item = value[name]
        if item is not None and not isinstance(item, str):
            raise EventError(f"{param}.{name} must be a string, got {type(item).__name__}",
                             param=f"{param}.{name}")
        if name == "language":
            changes[name] = item or None
        else:
            changes[name] = item or ("" if name == "prompt" else settings.model)
    return dataclasses.replace(settings, **changes)


def _ga_format(settings: RealtimeSettings, value: object, param: str) -> RealtimeSettings:
    if isinstance(value, str) and value in _BETA_FORMATS:  # lenient: the beta names
        return _beta_format(settings, value, param)
    if not isinstance(value, dict) or value.get("type") not in _GA_FORMATS:
        raise EventError(f"{param} must be {{\"type\": \"audio/pcm\", \"rate\": 24000}}, "
                         f"{{\"type\": \"audio/pcmu\"}} or {{\"type\": \"audio/pcma\"}}, "
                         f"got {value!r}", param=param)
    encoding = _GA_FORMATS[value["type"]]
    rate = 24000 if encoding == "pcm16" else 8000
    if encoding == "pcm16" and value.get("rate") is not None:
        rate = value["rate"]
        if isinstance(rate, bool) or not isinstance(rate, int) \
                or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise EventError(f"{param}.rate must be a whole number of Hz from "
                             f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}, got {rate!r}",
                             param=f"{param}.rate")
    return dataclasses.replace(settings, encoding=encoding, sample_rate=rate)


def _beta_format(settings: RealtimeSettings, value: object, param: str) -> RealtimeSettings:
    if value not in _BETA_FORMATS:
        raise EventError(f"{param} must be 'pcm16', 'g711_ulaw' or 'g711_alaw', got "
                         f"{value!r}", param=param)
    encoding = _BETA_FORMATS[str(value)]
    return dataclasses.replace(settings, encoding=encoding,
                               sample_rate=24000 if encoding == "pcm16" else 8000)


def _include(settings: RealtimeSettings, value: object, param: str) -> RealtimeSettings:
    if value is None:
        return dataclasses.replace(settings, include=())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EventError(f"{param} must be a list of strings", param=param)
    return dataclasses.replace(settings, include=tuple(value))


def parse_session_update(settings: RealtimeSettings, session: object,
                         beta: bool) -> RealtimeSettings:
    """Apply a ``session`` object of a session update to ``settings`` (pure).

    Only the fields present change; ``turn_detection: null`` turns server VAD off.

    Args:
        settings: the session's current settings.
        session: the ``session`` value of the client's event.
        beta: True for ``transcription_session.update`` (beta field names), False for
            ``session.update`` (GA ``audio.input`` layout).

    Returns:
        The new settings.

    Raises:
        EventError: a field has a value harken does not accept (says which and why).
    """
    if not isinstance(session, dict):
        raise EventError("session must be an object", param="session")
    if beta:
        if "input_audio_format" in session:
            settings = _beta_format(settings, session["input_audio_format"],
                                    "session.input_audio_format")
        if "input_audio_transcription" in session:
            settings = _transcription(settings, session["input_audio_transcription"],
                                      "session.input_audio_transcription")
        if "turn_detection" in session:
            settings = _turn_detection(settings, session["turn_detection"],
                                       "session.turn_detection")
        if "input_audio_noise_reduction" in session:
            settings = dataclasses.replace(
                settings, noise_reduction=session["input_audio_noise_reduction"])
    else:
        kind = session.get("type", "transcription")
        if kind != "transcription":
            raise EventError("this server serves transcription sessions only: session.type "
                             f"must be 'transcription', got {kind!r}", param="session.type")
        audio = session.get("audio")
        if audio is not None and not isinstance(audio, dict):
            raise EventError("session.audio must be an object", param="session.audio")
        source = (audio or {}).get("input")
        if source is not None and not isinstance(source, dict):
            raise EventError("session.audio.input must be an object",
                             param="session.audio.input")
        source = source or {}
        prefix = "session.audio.input"
        if "format" in source:
            settings = _ga_format(settings, source["format"], f"{prefix}.format")
        if "transcription" in source:
            settings = _transcription(settings, source["transcription"],
                                      f"{prefix}.transcription")
        if "turn_detection" in source:
            settings = _turn_detection(settings, source["turn_detection"],
                                       f"{prefix}.turn_detection")
        if "noise_reduction" in source:
            settings = dataclasses.replace(settings, noise_reduction=source["noise_reduction"])
    if "include" in session:
        settings = _include(settings, session["include"], "session.include")
    return settings


def render_session(settings: RealtimeSettings, session_id: str, beta: bool) -> dict[str, Any]:
    """The ``session`` object of a created/updated event, in the client's dialect."""
    turn: dict[str, Any] | None = None
    if settings.server_vad:
        turn = {"type": "server_vad", "threshold": settings.threshold,
                "prefix_padding_ms": settings.prefix_padding_ms,
                "silence_duration_ms": settings.silence_duration_ms}
    transcription = {"model": settings.model, "language": settings.language,
                     "prompt": settings.prompt}
    if beta:
        fmt = {v: k for k, v in _BETA_FORMATS.items()}[settings.encoding]
        return {"id": session_id, "object": "realtime.transcription_session",
                "input_audio_format": fmt, "input_audio_transcription": transcription,
                "turn_detection": turn, "input_audio_noise_reduction": settings.noise_reduction,
                "include": list(settings.include), "modalities": ["text"]}
    ga_format: dict[str, Any] = {"type": {v: k for k, v in _GA_FORMATS.items()}[
        settings.encoding]}
    if settings.encoding == "pcm16":
        ga_format["rate"] = settings.sample_rate
    return {"type": "transcription", "id": session_id,
            "object": "realtime.transcription_session",
            "audio": {"input": {"format": ga_format, "transcription": transcription,
                                "turn_detection": turn,
                                "noise_reduction": settings.noise_reduction}},
            "include": list(settings.include)}


# ---------------------------------------------------------------- the stream


class _Stream(StreamSession):
    """A StreamSession that can end an utterance on demand and names failed finals.

    Failed finals are handed to ``on_final_failed`` with their request (so the item they
    belong to is known) instead of becoming anonymous error events.
    """

    def __init__(self, host: EngineHost, name: str, emit: Callable[[Event], None], *,
                 vad_config: VadConfig,
                 on_final_failed: Callable[[TranscribeRequest, BaseException], None]) -> None:
        super().__init__(host, name, emit, vad_config=vad_config)
        self._on_final_failed = on_final_failed

    def set_vad_config(self, config: VadConfig) -> None:
        """Segmentation settings for the next :meth:`begin`."""
        self._vad_config = config

    def end_utterance(self) -> None:
        """End the open utterance now (if any) and transcribe it; the stream goes on."""
        pipeline = self._pipeline
        if pipeline is not None and self._slot is not None:
            self._route(pipeline.force_end())

    def _route(self, outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, FinalFailed):
                self._on_final_failed(out.request, out.error)
            else:
                super()._route([out])


@dataclass
class _Item:
    """One input-audio item: the audio between two commits and its transcript."""

    id: str
    utterances: int = 0
    """Utterances of the VAD in this item."""
    waiting: set[tuple[int, int]] = field(default_factory=set)
    """(stream, utterance) whose final has not arrived."""
    texts: list[str] = field(default_factory=list)
    """Final texts in order."""
    sent: str = ""
    """The text sent as deltas so far."""
    committed: bool = False
    cleared: bool = False
    failure: BaseException | None = None
    seconds: float = 0.0
    """Seconds of audio appended while this item was the buffer."""

    def text(self) -> str:
        return " ".join(t for t in self.texts if t)


class RealtimeConnection:
    """One Realtime transcription client (runs in the aiohttp handler task).

    Args:
        server: the running server (its config, host, VAD factory and stats).
        ws: the prepared ``aiohttp.web.WebSocketResponse``.
        request: the aiohttp request (for aborting its transport).
        name: the session's name, for logs.
        beta: the client speaks the beta dialect (``OpenAI-Beta: realtime=v1``).
    """

    def __init__(self, server: Server, ws: Any, request: Any, name: str, beta: bool) -> None:
        self._server = server
        self._ws = ws
        self._request = request
        self.name = name
        self._beta = beta
        self._session_id = "sess_" + uuid.uuid4().hex[:24]
        self._settings = RealtimeSettings.defaults(server.config.vad)
        self._begun_with: RealtimeSettings | None = None
        self._out: asyncio.Queue[str | None] = asyncio.Queue(server.config.send_queue)
        self._stream = _Stream(server.host, name, self._on_event,
                               vad_config=server.config.vad,
                               on_final_failed=self._on_final_failed)
        self._closing = False
        self._close_code = _CLOSE_GOING_AWAY
        self._sender: asyncio.Task[None] | None = None
        self._close_task: asyncio.Future[Any] | None = None
        self._events = 0
        self._bad_in_a_row = 0
        self._gen = 0
        """Stream generation: utterance ids restart at 1 in each stream."""
        self._owner: dict[tuple[int, int], _Item] = {}
        self._buffer: _Item | None = None
        self._last_committed: str | None = None
        self._offset_ms = 0
        """Audio of earlier streams, in ms, so event times count from the connection."""
        self._first_audio_at: float | None = None
        self._audio_seconds = 0.0

    # -------------------------------------------------------------- outgoing

    def _send(self, kind: str, **body: Any) -> None:
        if self._closing:
            return
        self._events += 1
        message = {"type": kind, "event_id": f"event_{self._events:08d}", **body}
        try:
            self._out.put_nowait(json.dumps(message, ensure_ascii=False))
        except asyncio.QueueFull:
            logger.warning("realtime client %s does not read its events; disconnecting it",
                           self.name)
            self._count_closed("too_slow")
            self._closing = True
            transport = self._request.transport
            if transport is not None:
                transport.abort()

    def _error(self, message: str, code: str, param: str | None = None,
               event_id: str | None = None, kind: str = "invalid_request_error") -> None:
        self._send("error", error={"type": kind, "code": code, "message": message,
                                   "param": param, "event_id": event_id})

    def _count_closed(self, code: str) -> None:
        stats = self._server.stats.closed_by_error
        stats[code] = stats.get(code, 0) + 1

    async def _send_loop(self) -> None:
        while True:
            text = await self._out.get()
            if text is None:
                return
            try:
                await self._ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                logger.debug("realtime client %s: send failed: %s", self.name, exc)
                self._closing = True
                return

    async def _finish_sending(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._out.put_nowait(None)
        sender = self._sender
        if sender is not None:
            try:
                await asyncio.wait_for(asyncio.shield(sender), 2.0)
            except asyncio.TimeoutError:
                sender.cancel()
                transport = self._request.transport
                if transport is not None:
                    transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code=self._close_code), 2.0)

    async def fail(self, code: str, message: str, close_code: int,
                   kind: str = "invalid_request_error") -> None:
        """Send an error event, then close the connection."""
        self._count_closed(code)
        logger.info("realtime client %s: %s (%s)", self.name, message, code)
        self._error(message, code, kind=kind)
        self._close_code = close_code
        self._closing = True
        await self._finish_sending()

    # -------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Serve the connection until it closes."""
        self._sender = asyncio.create_task(self._send_loop(), name=f"harken-rt-{self.name}")
        try:
            try:
                self._stream.open()
            except ServerBusy as exc:
                self._server.stats.rejected_total += 1
                await self.fail("server_busy", str(exc), _CLOSE_TRY_LATER, "server_error")
                return
            except HarkenError as exc:
                await self.fail("internal", str(exc), _CLOSE_INTERNAL, "server_error")
                return
            created = "transcription_session.created" if self._beta else "session.created"
            self._send(created, session=render_session(self._settings, self._session_id,
                                                       self._beta))
            await self._receive_loop()
            if not self._closing:
                self._closing = True
                await self._finish_sending()
        finally:
            self._stream.close()
            if self._sender is not None and not self._sender.done():
                self._sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._sender

    async def shutdown(self, timeout: float) -> None:
        """Server shutdown: finish the committed items' transcripts (bounded), then close."""
        if self._closing:
            return
        if self._stream.started:
            self._stream.end_utterance()
            await self._stream.drain(timeout)
        self._error("the server is shutting down", "shutting_down", kind="server_error")
        self._close_code = _CLOSE_GOING_AWAY
        self._closing = True
        await self._finish_sending()

    async def _receive_loop(self) -> None:
        web = import_aiohttp()
        msg_type = web.WSMsgType
        while not self._closing:
            msg = await self._ws.receive()
            if self._closing:
                return
            if msg.type == msg_type.TEXT:
                await self._on_text(msg.data)
            elif msg.type == msg_type.BINARY:
                self._bad("binary messages are not part of the Realtime API; send audio as "
                          "base64 in input_audio_buffer.append events", "invalid_event")
            elif msg.type == msg_type.ERROR:
                exc = self._ws.exception()
                await self.fail("too_large", f"message too large or malformed: {exc}",
                                _CLOSE_TOO_BIG)
                return
            else:  # CLOSE, CLOSING, CLOSED
                return
            if self._bad_in_a_row >= MAX_BAD_EVENTS and not self._closing:
                await self.fail("too_many_errors", f"{MAX_BAD_EVENTS} malformed events in a "
                                "row; closing the connection", _CLOSE_POLICY)
                return

    def _bad(self, message: str, code: str, param: str | None = None,
             event_id: str | None = None) -> None:
        self._bad_in_a_row += 1
        self._error(message, code, param, event_id)

    # -------------------------------------------------------------- incoming

    async def _on_text(self, text: str) -> None:
        try:
            event = json.loads(text)
        except (ValueError, RecursionError) as exc:
            self._bad(f"the message is not valid JSON: {exc}", "invalid_json")
            return
        if not isinstance(event, dict):
            self._bad("an event must be a JSON object with a 'type'", "invalid_event")
            return
        event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        kind = event.get("type")
        if kind != "input_audio_buffer.append" and \
                len(text) > self._server.config.max_control_bytes:
            self._bad(f"a {kind!r} event of {len(text)} bytes is longer than the "
                      f"{self._server.config.max_control_bytes} bytes accepted",
                      "event_too_large", None, event_id)
            return
        try:
            if kind == "input_audio_buffer.append":
                await self._append(event)
            elif kind in ("session.update", "transcription_session.update"):
                await self._update(event, kind)
            elif kind == "input_audio_buffer.commit":
                self._commit(event_id)
            elif kind == "input_audio_buffer.clear":
                self._clear()
            else:
                raise EventError(f"unknown or unsupported event type {kind!r}; a "
                                 "transcription session takes session.update, "
                                 "input_audio_buffer.append, .commit and .clear",
                                 "invalid_event", "type")
        except EventError as exc:
            self._bad(exc.message, exc.code, exc.param, event_id)
            return
        self._bad_in_a_row = 0

    async def _update(self, event: dict[str, Any], kind: str) -> None:
        beta = kind == "transcription_session.update"
        settings = parse_session_update(self._settings, event.get("session"), beta)
        try:
            settings.vad_config(self._server.config.vad)
        except ConfigError as exc:
            raise EventError(str(exc), param="session.turn_detection") from None
        self._settings = settings
        if self._begun_with is not None and \
                settings.restart_key() != self._begun_with.restart_key():
            await self._restart_stream()
        updated = "transcription_session.updated" if beta else "session.updated"
        self._send(updated, session=render_session(settings, self._session_id, beta))

    async def _restart_stream(self) -> None:
        """New format or VAD timings: end the stream (its finals come in), begin afresh."""
        stream = self._stream
        stream.end_utterance()
        in_time = await stream.drain(self._server.config.drain_timeout_s)
        old = self._gen
        if not in_time:
            for key, item in list(self._owner.items()):
                if key[0] == old:
                    self._final_failed(key, item, TimeoutError(
                        "the transcription did not finish before the session's settings "
                        "changed"))
        self._offset_ms += int(round(stream.stream_seconds * 1000))
        self._begun_with = None  # the next append begins the new stream

    def _begin(self) -> None:
        settings = self._settings
        self._stream.set_vad_config(settings.vad_config(self._server.config.vad))
        vad = self._server.vads.create()
        self._gen += 1
        self._stream.begin(vad, self._server.config.realtime,
                           sample_rate=settings.sample_rate, encoding=settings.encoding,
                           language=settings.language, options=settings.engine_options())
        self._begun_with = settings

    async def _append(self, event: dict[str, Any]) -> None:
        config = self._server.config
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise EventError("input_audio_buffer.append needs 'audio': base64 of the audio "
                             "bytes", "invalid_value", "audio")
        if len(audio) > (config.max_audio_frame_bytes + 2) // 3 * 4:
            await self.fail("too_large", f"an append of {len(audio)} base64 characters holds "
                            f"more than the {config.max_audio_frame_bytes} bytes of audio "
                            "accepted per event", _CLOSE_TOO_BIG)
            return
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EventError(f"'audio' is not valid base64: {exc}", "invalid_value",
                             "audio") from None
        if not data:
            return
        settings = self._settings
        width = 2 if settings.encoding == "pcm16" else 1
        if len(data) % width:
            raise EventError(f"pcm16 audio has 2 bytes per sample; this append has "
                             f"{len(data)} bytes", "invalid_value", "audio")
        seconds = len(data) / width / settings.sample_rate
        self._buffer_item().seconds += seconds
        try:
            if self._begun_with is None:
                self._begin()
            self._stream.feed_bytes(data)
        except AudioFormatError as exc:
            raise EventError(f"the audio is not {settings.encoding} at "
                             f"{settings.sample_rate} Hz: {exc}", "invalid_value",
                             "audio") from None
        except ServerBusy as exc:
            await self.fail("server_busy", str(exc), _CLOSE_TRY_LATER, "server_error")
            return
        now = time.monotonic()
        if self._first_audio_at is None:
            self._first_audio_at = now
        self._audio_seconds += seconds
        rate = config.max_audio_rate
        if rate is not None:
            elapsed = now - self._first_audio_at
            if self._audio_seconds > config.audio_burst_s + rate * elapsed:
                await self.fail("too_fast", f"audio arrives faster than {rate:g} times real "
                                f"time ({self._audio_seconds:.1f} s of audio in "
                                f"{elapsed:.1f} s)", _CLOSE_POLICY)

    def _buffer_item(self) -> _Item:
        if self._buffer is None:
            self._buffer = _Item("item_" + uuid.uuid4().hex[:20])
        return self._buffer

    def _commit(self, event_id: str | None) -> None:
        item = self._buffer
        if item is None or (item.seconds < _MIN_COMMIT_S and not item.utterances):
            held = 0.0 if item is None else item.seconds
            raise EventError(f"the input audio buffer holds {held * 1000:.0f} ms of audio; "
                             f"at least {_MIN_COMMIT_S * 1000:.0f} ms are needed to commit",
                             "input_audio_buffer_commit_empty")
        self._stream.end_utterance()  # in server VAD mode this commits the item already
        if not item.committed and not item.cleared:
            self._commit_item(item)

    def _commit_item(self, item: _Item) -> None:
        item.committed = True
        if self._buffer is item:
            self._buffer = None
        self._send("input_audio_buffer.committed", item_id=item.id,
                   previous_item_id=self._last_committed)
        self._last_committed = item.id
        self._maybe_complete(item)

    def _clear(self) -> None:
        item = self._buffer
        if item is not None:
            item.cleared = True
            self._stream.end_utterance()  # its final is dropped when it comes
            self._buffer = None
            if not item.waiting:
                self._forget(item)
        self._send("input_audio_buffer.cleared")

    # -------------------------------------------------------------- pipeline events

    def _on_event(self, event: Event) -> None:
        key = (self._gen, getattr(event, "utterance_id", 0))
        if isinstance(event, SpeechStarted):
            buffer = self._buffer_item()
            buffer.utterances += 1
            buffer.waiting.add(key)
            self._owner[key] = buffer
            if self._settings.server_vad:
                self._send("input_audio_buffer.speech_started", item_id=buffer.id,
                           audio_start_ms=self._offset_ms + int(round(event.start * 1000)))
        elif isinstance(event, SpeechEnded):
            ended = self._owner.get(key)
            if ended is None:
                return
            if event.discarded:  # too short: no final will come
                ended.waiting.discard(key)
                self._owner.pop(key, None)
            if ended.cleared:
                if not ended.waiting:
                    self._forget(ended)
                return
            if self._settings.server_vad and not ended.committed:
                self._send("input_audio_buffer.speech_stopped", item_id=ended.id,
                           audio_end_ms=self._offset_ms + int(round(event.end * 1000)))
                self._commit_item(ended)
            else:
                self._maybe_complete(ended)
        elif isinstance(event, PartialTranscript):
            item = self._owner.get(key)
            if item is not None and not item.cleared and event.stable:
                self._advance(item, " ".join(t for t in [*item.texts, event.stable] if t))
        elif isinstance(event, FinalTranscript):
            item = self._owner.get(key)
            if item is None:
                return
            if not event.split:
                item.waiting.discard(key)
                self._owner.pop(key, None)
            if item.cleared:
                if not item.waiting:
                    self._forget(item)
                return
            item.texts.append(event.text)
            self._advance(item, item.text())
            self._maybe_complete(item)
        elif isinstance(event, ErrorEvent):
            self._error(f"the engine failed: {event.error}", "engine_error",
                        kind="server_error")
            if event.fatal:
                self._close_code = _CLOSE_INTERNAL
                self._count_closed("engine_error")
                self._closing = True
                with contextlib.suppress(asyncio.QueueFull):
                    self._out.put_nowait(None)
                # Closing the socket ends the receive loop, whose cleanup leaves the host.
                self._close_task = asyncio.ensure_future(self._ws.close(code=_CLOSE_INTERNAL))

    def _on_final_failed(self, request: TranscribeRequest, error: BaseException) -> None:
        logger.warning("realtime session %s: utterance %d could not be transcribed: %s",
                       self.name, request.utterance_id, error)
        key = (self._gen, request.utterance_id)
        item = self._owner.get(key)
        if item is not None:
            self._final_failed(key, item, error)

    def _final_failed(self, key: tuple[int, int], item: _Item, error: BaseException) -> None:
        item.failure = item.failure or error
        item.waiting.discard(key)
        self._owner.pop(key, None)
        if item.cleared:
            if not item.waiting:
                self._forget(item)
            return
        self._maybe_complete(item)

    def _advance(self, item: _Item, text: str) -> None:
        """Send the part of ``text`` beyond what this item's deltas already said."""
        if len(text) > len(item.sent) and text.startswith(item.sent):
            self._server.stats.partials_sent += 1
            self._send("conversation.item.input_audio_transcription.delta", item_id=item.id,
                       content_index=0, delta=text[len(item.sent):])
            item.sent = text

    def _maybe_complete(self, item: _Item) -> None:
        if not item.committed or item.waiting:
            return
        self._forget(item)
        if item.failure is not None:
            self._send("conversation.item.input_audio_transcription.failed", item_id=item.id,
                       content_index=0,
                       error={"type": "transcription_error", "code": "engine_error",
                              "message": f"the engine could not transcribe the audio: "
                                         f"{item.failure}", "param": None})
            return
        self._server.stats.finals_sent += 1
        self._send("conversation.item.input_audio_transcription.completed", item_id=item.id,
                   content_index=0, transcript=item.text(), logprobs=None,
                   usage={"type": "duration", "seconds": round(item.seconds, 3)})

    def _forget(self, item: _Item) -> None:
        for key in [k for k, v in self._owner.items() if v is item]:
            del self._owner[key]


# ---------------------------------------------------------------- routes


class _Hub:
    """The server's Realtime connections: accepts them and shuts them down with the app."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._connections: set[RealtimeConnection] = set()
        self._closing = False

    @property
    def connections(self) -> int:
        """Realtime clients connected now."""
        return len(self._connections)

    async def handler(self, request: Any) -> Any:
        web = import_aiohttp()
        server = self._server
        cfg = server.config
        intent = request.query.get("intent")
        if intent is not None and intent != "transcription":
            return _http_error(web, 400, f"this server serves transcription sessions only: "
                               f"intent must be 'transcription', got {intent!r}", "intent")
        limit = (cfg.max_audio_frame_bytes + 2) // 3 * 4 + cfg.max_control_bytes + 1024
        ws = web.WebSocketResponse(max_msg_size=limit, timeout=2.0, heartbeat=None)
        if not ws.can_prepare(request).ok:
            return _http_error(web, 400, "GET /v1/realtime is a WebSocket endpoint: "
                               "connect with a WebSocket client", None)
        await ws.prepare(request)
        server.stats.connections_total += 1
        beta = "realtime=v1" in request.headers.get("OpenAI-Beta", "")
        conn = RealtimeConnection(server, ws, request,
                                  server.session_name(request.remote or "?"), beta)
        if self._closing:
            await conn.fail("shutting_down", "the server is shutting down",
                            _CLOSE_GOING_AWAY, "server_error")
            return ws
        self._connections.add(conn)
        try:
            await conn.run()
        except Exception as exc:  # a bug: report it to this client only
            logger.exception("realtime session %s failed", conn.name)
            with contextlib.suppress(Exception):
                await conn.fail("internal", f"{type(exc).__name__}: {exc}", _CLOSE_INTERNAL,
                                "server_error")
        finally:
            self._connections.discard(conn)
        return ws

    async def on_shutdown(self, app: Any) -> None:
        """aiohttp's on_shutdown hook: finish transcripts (bounded) and close every client."""
        self._closing = True
        conns = list(self._connections)
        if conns:
            timeout = self._server.config.drain_timeout_s
            await asyncio.wait([asyncio.ensure_future(c.shutdown(timeout)) for c in conns],
                               timeout=timeout + 3.0)


def _http_error(web: Any, status: int, message: str, param: str | None) -> Any:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param,
                      "code": None}}
    return web.json_response(body, status=status)


def add_routes(app: Any, server: Server) -> None:
    """Register ``GET /v1/realtime`` (WebSocket) and its shutdown hook on an aiohttp app."""
    hub = _Hub(server)
    app.router.add_get(PATH, hub.handler)
    app.on_shutdown.append(hub.on_shutdown)
