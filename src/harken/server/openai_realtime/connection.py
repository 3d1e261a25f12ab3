"""One OpenAI Realtime transcription connection: its events in, its items and transcripts out.

:class:`RealtimeConnection` serves one client of ``GET /v1/realtime?intent=transcription``
(the protocol is described in :mod:`harken.server.openai_realtime`): it parses the client's
events, feeds the appended audio to a :class:`~harken.server.session.StreamSession`, groups
the VAD's utterances into input-audio items (one per commit) and turns the pipeline's events
into ``speech_started`` / ``committed`` / ``delta`` / ``completed`` / ``failed`` events. The
outgoing queue, the closing sequence and the rate limit come from
:class:`~harken.server.connection_base.WsConnection`. It is one piece (~440 lines) because
the client's events (append, commit, clear, update) and the pipeline's events (speech,
partials, finals, failures) both change the same items; split, each half would reach into
the other's state.

Thread: everything runs on the server's asyncio event loop (the aiohttp handler task of the
connection plus its sender task); transcription runs in the shared engine host.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ...core.deltas import TextLedger, logprobs
from ...engine.base import TranscribeRequest
from ...errors import AudioFormatError, ConfigError
from ...events import (
    ErrorEvent,
    Event,
    FinalTranscript,
    PartialTranscript,
    SpeechEnded,
    SpeechStarted,
)
from ..connection_base import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    AudioPace,
    WsConnection,
)
from ..context import ServerContext
from ..engine_host import ServerBusy
from ..languages import language_problem
from ..session import StreamSession
from .settings import EventError, RealtimeSettings, parse_session_update, render_session

__all__ = ["MAX_BAD_EVENTS", "RealtimeConnection"]

logger = logging.getLogger(__name__)

MAX_BAD_EVENTS = 32
"""Malformed client events in a row after which the connection is closed (policy)."""

_MIN_COMMIT_S = 0.1
"""OpenAI refuses to commit less than 100 ms of audio; so does harken."""
_SERVER_ERRORS = ("server_busy", "internal", "shutting_down", "engine_error")
"""Error codes sent with type "server_error" (the others are "invalid_request_error")."""


@dataclass
class _Item:
    """One input-audio item: the audio between two commits and its transcript."""

    id: str
    utterances: int = 0
    """Utterances of the VAD in this item."""
    ledger: TextLedger = field(default_factory=TextLedger)
    """The finals in order, and what the deltas said of them."""
    waiting: set[tuple[int, int]] = field(default_factory=set)
    """(stream, utterance) whose final has not arrived."""
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    """One entry per word of the finals so far (when the client asked for logprobs)."""
    previous: str | None = None
    """The item committed before this one."""
    committed: bool = False
    cleared: bool = False
    failure: BaseException | None = None
    seconds: float = 0.0
    """Seconds of audio appended while this item was the buffer."""


class RealtimeConnection(WsConnection):
    """One Realtime transcription client (runs in the aiohttp handler task).

    Args:
        server: the running server's context (its config, engine, VAD factory and stats).
        ws: the prepared ``aiohttp.web.WebSocketResponse``.
        request: the aiohttp request (for aborting its transport).
        name: the session's name, for logs.
        beta: the client speaks the beta dialect (``OpenAI-Beta: realtime=v1``).
    """

    label = "realtime client"
    protocol = "openai-realtime"
    task_prefix = "harken-rt"
    # OpenAI's clients end their event iteration quietly on 1000/1001 and raise on any
    # other code; the "shutting_down" error before the close says what happened.
    shutdown_close = CLOSE_GOING_AWAY

    def __init__(self, server: ServerContext, ws: Any, request: Any, name: str, beta: bool) -> None:
        super().__init__(server, ws, request, name)
        self._beta = beta
        self._session_id = "sess_" + uuid.uuid4().hex[:24]
        self._settings = RealtimeSettings.defaults(server.config.vad)
        self._begun_with: RealtimeSettings | None = None
        self._stream = StreamSession(server.engine, name, self._on_event,
                                     vad_config=server.config.vad,
                                     on_final_failed=self._on_final_failed)
        self._events = 0
        self._bad_in_a_row = 0
        self._gen = 0
        """Stream generation: utterance ids restart at 1 in each stream."""
        self._owner: dict[tuple[int, int], _Item] = {}
        self._buffer: _Item | None = None
        self._last_committed: str | None = None
        self._offset_ms = 0
        """Audio of earlier streams, in ms, so event times count from the connection."""
        self._pace = AudioPace(server.config.max_audio_rate, server.config.audio_burst_s)
        """Counts from the first appended audio."""
        self._audio_seconds = 0.0

    # -------------------------------------------------------------- outgoing

    def _send(self, kind: str, **body: Any) -> None:
        if self._closing:
            return
        self._events += 1
        message = {"type": kind, "event_id": f"event_{self._events:08d}", **body}
        self.put(json.dumps(message, ensure_ascii=False))

    def _error(self, message: str, code: str, param: str | None = None,
               event_id: str | None = None, kind: str = "invalid_request_error") -> None:
        self._send("error", error={"type": kind, "code": code, "message": message,
                                   "param": param, "event_id": event_id})

    def send_error(self, code: str, message: str) -> None:
        """Queue an OpenAI ``error`` event (server-side codes get type "server_error")."""
        self._error(message, code,
                    kind="server_error" if code in _SERVER_ERRORS else "invalid_request_error")

    # -------------------------------------------------------------- lifecycle

    async def start_serving(self) -> bool:
        """Open the stream on the engine host; say ``session.created``."""
        if not await self.open_session(self._stream):
            return False
        created = "transcription_session.created" if self._beta else "session.created"
        self._send(created, session=render_session(self._settings, self._session_id,
                                                   self._beta))
        return True

    def close_session(self) -> None:
        """Leave the engine host."""
        self._stream.close()

    async def drain_for_shutdown(self, timeout: float) -> None:
        """Finish the committed items' transcripts (bounded)."""
        if self._stream.started:
            self._stream.end_utterance()
            await self._stream.drain(timeout)

    async def on_binary(self, data: bytes) -> None:
        """Binary frames are not part of the Realtime API: an error event."""
        self._bad("binary messages are not part of the Realtime API; send audio as "
                  "base64 in input_audio_buffer.append events", "invalid_event")
        await self._too_many_bad()

    async def on_ws_error(self, exc: BaseException | None) -> None:
        """An oversize or malformed frame closes the connection."""
        await self.fail("too_large", f"message too large or malformed: {exc}", CLOSE_TOO_BIG)

    async def _too_many_bad(self) -> None:
        if self._bad_in_a_row >= MAX_BAD_EVENTS and not self._closing:
            await self.fail("too_many_errors", f"{MAX_BAD_EVENTS} malformed events in a "
                            "row; closing the connection", CLOSE_POLICY)

    def _bad(self, message: str, code: str, param: str | None = None,
             event_id: str | None = None) -> None:
        self._bad_in_a_row += 1
        self._error(message, code, param, event_id)

    # -------------------------------------------------------------- incoming

    async def on_text(self, text: str) -> None:
        """One client event (JSON)."""
        await self._on_event_text(text)
        await self._too_many_bad()

    async def _on_event_text(self, text: str) -> None:
        try:
            event = json.loads(text)
        except (ValueError, RecursionError) as exc:
            self._bad(f"the message is not valid JSON: {exc}", "invalid_json")
            return
        if not isinstance(event, dict):
            self._bad("an event must be a JSON object with a 'type'", "invalid_event")
            return
        self.admit()  # a client speaking the protocol: only the idle timeout applies now
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
        problem = language_problem(self._server.engine.ready_info, (settings.language,))
        if problem:
            raise EventError(problem, param="session.input_audio_transcription.language" if beta
                             else "session.audio.input.transcription.language")
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
        vads = self._server.vads
        vad_config = settings.vad_config(self._server.config.vad, smart=vads.smart_turns)
        vad = vads.create()
        self._gen += 1
        self._stream.begin(vad, self._server.config.openai_realtime,
                           sample_rate=settings.sample_rate, encoding=settings.encoding,
                           language=settings.language, hints=settings.decode_hints(),
                           vad_config=vad_config, turn=vads.turn(vad_config))
        self.activity.new_stream()
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
                            "accepted per event", CLOSE_TOO_BIG)
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
            self.activity.audio(self._stream.stream_seconds, time.monotonic())
        except AudioFormatError as exc:
            raise EventError(f"the audio is not {settings.encoding} at "
                             f"{settings.sample_rate} Hz: {exc}", "invalid_value",
                             "audio") from None
        except ServerBusy as exc:
            await self.fail("server_busy", str(exc), CLOSE_TRY_LATER)
            return
        self._audio_seconds += seconds
        too_fast = self._pace.check(self._audio_seconds)
        if too_fast is not None:
            await self.fail("too_fast", too_fast, CLOSE_POLICY)

    def _buffer_item(self) -> _Item:
        if self._buffer is None:
            # Stable words go out early only when the final pass is bound to them.
            self._buffer = _Item("item_" + uuid.uuid4().hex[:20], ledger=TextLedger(
                self._server.config.openai_realtime.stable_prefix))
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
        item.previous = self._last_committed
        self._send("input_audio_buffer.committed", item_id=item.id,
                   previous_item_id=item.previous)
        self._send("conversation.item.created" if self._beta else "conversation.item.added",
                   previous_item_id=item.previous, item=self._item_body(item, None))
        self._last_committed = item.id
        self._maybe_complete(item)

    def _item_body(self, item: _Item, transcript: str | None) -> dict[str, Any]:
        """The ``item`` of the item events: a user message holding the input audio."""
        status = "completed" if transcript is not None or self._beta else "in_progress"
        if item.failure is not None:
            status = "incomplete"
        return {"id": item.id, "object": "realtime.item", "type": "message", "role": "user",
                "status": status,
                "content": [{"type": "input_audio", "transcript": transcript}]}

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
            if self._settle(ended, key, done=event.discarded):  # discarded: no final
                return
            if self._settings.server_vad and not ended.committed:
                self._send("input_audio_buffer.speech_stopped", item_id=ended.id,
                           audio_end_ms=self._offset_ms + int(round(event.end * 1000)))
                self._commit_item(ended)
            else:
                self._maybe_complete(ended)
        elif isinstance(event, PartialTranscript):
            item = self._owner.get(key)
            if item is not None and not item.cleared:
                # Nothing after an utterance of this item whose final is still out.
                self._delta(item, item.ledger.partial(event.stable, item.waiting <= {key}))
        elif isinstance(event, FinalTranscript):
            self.activity.final(event.text, event.end, time.monotonic())
            item = self._owner.get(key)
            if item is None:
                return
            if self._settle(item, key, done=not event.split):
                return
            words: list[dict[str, Any]] = []
            if self._settings.logprobs:
                words = logprobs(event.words, first=not item.ledger.transcript)
                item.logprobs.extend(words)
            delta = item.ledger.final(event.text)
            # The words of this final that the delta says (all of them unless stable
            # words of it went out early).
            said = len(delta.split())
            self._delta(item, delta, words[len(words) - said:] if said else [])
            self._maybe_complete(item)
        elif isinstance(event, ErrorEvent):
            self._error(f"the engine failed: {event.error}", "engine_error",
                        kind="server_error")
            if event.fatal and not self._closing:
                self.count_closed("engine_error")
                self.close_soon(CLOSE_INTERNAL)

    def _on_final_failed(self, request: TranscribeRequest, error: BaseException) -> None:
        logger.warning("realtime session %s: utterance %d could not be transcribed: %s",
                       self.name, request.utterance_id, error)
        key = (self._gen, request.utterance_id)
        item = self._owner.get(key)
        if item is not None:
            self._final_failed(key, item, error)

    def _final_failed(self, key: tuple[int, int], item: _Item, error: BaseException) -> None:
        item.failure = item.failure or error
        if not self._settle(item, key):
            self._maybe_complete(item)

    def _settle(self, item: _Item, key: tuple[int, int], done: bool = True) -> bool:
        """Stop waiting for utterance ``key`` of ``item`` (if ``done``).

        Returns:
            True if the item was cleared (nothing more is sent for it; it is forgotten once
            nothing of it is waited for).
        """
        if done:
            item.waiting.discard(key)
            self._owner.pop(key, None)
        if item.cleared:
            if not item.waiting:
                self._forget(item)
            return True
        return False

    def _delta(self, item: _Item, delta: str,
               words: list[dict[str, Any]] | None = None) -> None:
        """Send ``delta`` of ``item`` (nothing for ""), with its words' logprobs if asked."""
        if not delta:
            return
        self._server.stats.partials_sent += 1
        extra: dict[str, Any] = {"logprobs": words or []} if self._settings.logprobs else {}
        self._send("conversation.item.input_audio_transcription.delta", item_id=item.id,
                   content_index=0, delta=delta, **extra)

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
            transcript = None
        else:
            self._server.stats.finals_sent += 1
            transcript = item.ledger.transcript
            self._send("conversation.item.input_audio_transcription.completed",
                       item_id=item.id, content_index=0, transcript=transcript,
                       logprobs=item.logprobs if self._settings.logprobs else None,
                       usage={"type": "duration", "seconds": round(item.seconds, 3)})
        if not self._beta:
            self._send("conversation.item.done", previous_item_id=item.previous,
                       item=self._item_body(item, transcript))

    def _forget(self, item: _Item) -> None:
        for key in [k for k, v in self._owner.items() if v is item]:
            del self._owner[key]

