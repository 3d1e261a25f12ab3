"""harken's WebSocket protocol on the server: one :class:`Connection` per client.

A connection owns a :class:`~harken.server.session.StreamSession` (its pipeline and VAD),
which takes its place on the engine host at the first valid "start": a socket that sends no
valid "start" within ``ServerConfig.admit_timeout_s``, or nothing for ``idle_timeout_s``, is
closed ("timeout") without ever holding a session;
its bounded outgoing queue, sender task and closing sequence come from
:class:`~harken.server.connection_base.WsConnection`, so a client that does not read is
disconnected ("too_slow") instead of growing the server's memory. Malformed input (bad
JSON, audio before "start", a bad encoding, an oversize message, audio faster than the
configured rate) gets an error message and closes this connection only.

Thread: everything runs on the server's asyncio event loop, in the aiohttp handler task of
the connection plus its sender task.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from ..core.deltas import TextLedger
from ..engine.base import NO_WORDS
from ..errors import AudioFormatError, ConfigError, ProtocolError
from ..events import ErrorEvent, Event, FinalTranscript
from . import protocol as p
from .connection_base import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    AudioPace,
    WsConnection,
    import_aiohttp,
    is_size_error,
    oversize,
    serve,
)
from .context import ServerContext
from .engine_host import ServerBusy
from .languages import language_problem
from .session import StreamSession

__all__ = ["CLOSE_GOING_AWAY", "CLOSE_INTERNAL", "PATH", "Connection", "add_routes",
           "import_aiohttp"]

logger = logging.getLogger(__name__)

PATH = "/v1/stream"
"""The endpoint's path."""

_DRAIN_POLL_S = 0.05
"""Seconds between looks at whether a draining session's utterance has ended."""


class Connection(WsConnection):
    """One WebSocket client of harken's protocol (runs in the aiohttp handler task).

    Args:
        server: the running server's context (its config, engine, VAD factory and stats).
        ws: the prepared ``aiohttp.web.WebSocketResponse``.
        request: the aiohttp request (for aborting its transport).
        name: the session's name, for logs and the "ready" message.
    """

    protocol = "harken"
    shutdown_code = p.ErrorCode.SHUTDOWN
    timeout_code = p.ErrorCode.TIMEOUT
    internal_code = p.ErrorCode.INTERNAL

    def __init__(self, server: ServerContext, ws: Any, request: Any, name: str) -> None:
        super().__init__(server, ws, request, name)
        self._session = StreamSession(server.engine, name, self._on_event,
                                      vad_config=server.config.vad)
        self._pace = AudioPace(server.config.max_audio_rate, server.config.audio_burst_s)
        """Counts from the stream's "start"."""
        self._ledgers: dict[int, TextLedger] = {}
        """Open utterance -> what its ``append`` fields said (see protocol.Final)."""
        self._opened = False
        """Whether the session has its place on the engine host (from the first "start")."""
        self._deaf = False
        """Set while draining for shutdown, once the last utterance ended: audio is ignored."""

    # -------------------------------------------------------------- outgoing

    def send(self, message: p.ServerMessage) -> None:
        """Queue a message; a full queue means the client stopped reading: drop it."""
        self.put(p.encode(message))

    def send_error(self, code: str, message: str) -> None:
        """Queue an "error" message."""
        self.send(p.Error(message, code))

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ErrorEvent):
            self.send(p.Error(str(event.error), p.ErrorCode.ENGINE))
            if event.fatal:
                self.close_soon(CLOSE_INTERNAL)
            return
        message = p.from_event(event)
        if message is None:
            return
        if isinstance(message, p.SpeechStartedMessage):
            # Finals come in utterance order; a ledger this far behind lost its final.
            for old in [u for u in self._ledgers if u < message.utterance - 8]:
                del self._ledgers[old]
        elif isinstance(message, p.SpeechEndedMessage) and message.discarded:
            self._ledgers.pop(message.utterance, None)
        elif isinstance(message, (p.Partial, p.Final)):
            ledger = self._ledgers.setdefault(message.utterance, TextLedger(
                self._server.config.realtime.stable_prefix))
            if isinstance(message, p.Final):
                self._server.stats.finals_sent += 1
                self.activity.final(message.text, message.end, time.monotonic())
                message = dataclasses.replace(message, append=ledger.final(message.text))
                if not (isinstance(event, FinalTranscript) and event.split):
                    del self._ledgers[message.utterance]
            else:
                self._server.stats.partials_sent += 1
                message = dataclasses.replace(message, append=ledger.partial(message.stable))
        self.send(message)

    # -------------------------------------------------------------- lifecycle

    async def start_serving(self) -> bool:
        """Nothing yet: the session takes a place on the engine host at its "start"."""
        return True

    def close_session(self) -> None:
        """Leave the engine host."""
        self._session.close()

    async def drain_for_shutdown(self, timeout: float) -> None:
        """Let the open utterance end by itself, transcribe it (bounded), say "stopped".

        Audio keeps arriving meanwhile, so an utterance is cut only if it lasts longer than
        ``timeout``: the client that reconnects elsewhere and sends what came after the
        last final gets exactly one final per utterance.
        """
        session = self._session
        if not session.started:
            return
        deadline = asyncio.get_running_loop().time() + timeout
        while session.started and session.in_utterance and not self._closing:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await asyncio.sleep(min(_DRAIN_POLL_S, left))
        self._deaf = True  # audio from now on goes to the replica the client reconnects to
        if session.started:
            session.flush()
            left = deadline - asyncio.get_running_loop().time()
            await session.drain(max(left, 1.0))
        self.send(p.Stopped())

    async def on_ws_error(self, exc: BaseException | None) -> None:
        """An oversize message closes the connection with "too_large"."""
        if is_size_error(exc):
            await self.fail(p.ErrorCode.TOO_LARGE,
                            f"message too large: {exc}; the limit is "
                            f"{self._server.config.max_audio_frame_bytes} bytes", CLOSE_TOO_BIG)

    # -------------------------------------------------------------- incoming

    async def on_text(self, text: str) -> None:
        """A control message."""
        config = self._server.config
        try:
            message = p.parse_client(text, config.max_control_bytes)
        except ProtocolError as exc:
            code = (p.ErrorCode.TOO_LARGE if "longer than" in str(exc)
                    else p.ErrorCode.BAD_MESSAGE)
            await self.fail(code, str(exc), CLOSE_POLICY)
            return
        if isinstance(message, p.Ping):
            self.send(p.Pong())
        elif isinstance(message, p.Start):
            await self._start(message)
        elif isinstance(message, p.Stop):
            if not self._session.started:
                await self.fail(p.ErrorCode.NOT_STARTED, '"stop" before "start"',
                                CLOSE_POLICY)
                return
            self._session.flush()
            if not await self._session.drain(config.drain_timeout_s):
                self.send(p.Error(f"{self._session.outstanding} utterance(s) were not "
                                  f"transcribed within {config.drain_timeout_s} s",
                                  p.ErrorCode.ENGINE))
            self.send(p.Stopped())

    async def _start(self, message: p.Start) -> None:
        config = self._server.config
        if not self._opened:
            if not await self.open_session(self._session):
                return
            self._opened = True
            self.admit()
        problem = language_problem(self._server.engine.ready_info,
                                   (message.language, *message.languages))
        if problem:
            await self.fail(p.ErrorCode.BAD_MESSAGE, problem, CLOSE_POLICY)
            return
        realtime = config.realtime
        if not message.partials and realtime.partials:
            realtime = dataclasses.replace(realtime, partials=False)
        try:
            vad = self._server.vads.create()
            self._session.begin(vad, realtime, sample_rate=message.sample_rate,
                                encoding=message.encoding, channels=message.channels,
                                language=message.language, languages=message.languages,
                                hints=None if message.words else NO_WORDS,
                                turn=self._server.vads.turn(config.vad))
        except (AudioFormatError, ConfigError) as exc:
            await self.fail(p.ErrorCode.BAD_MESSAGE, str(exc), CLOSE_POLICY)
            return
        except ServerBusy as exc:
            await self.fail(p.ErrorCode.SERVER_BUSY, str(exc), CLOSE_TRY_LATER)
            return
        self._pace.restart()
        self.activity.new_stream()
        self.send(p.Ready(self.name, message.sample_rate))

    async def on_binary(self, data: bytes) -> None:
        """Audio in the format announced by "start"."""
        config = self._server.config
        if self._deaf:
            return
        if not self._session.started:
            await self.fail(p.ErrorCode.NOT_STARTED, 'audio arrived before "start"; send '
                            '{"type": "start", "sample_rate": ...} first', CLOSE_POLICY)
            return
        too_large = oversize("audio message", len(data), config.max_audio_frame_bytes)
        if too_large is not None:
            await self.fail(p.ErrorCode.TOO_LARGE, too_large, CLOSE_TOO_BIG)
            return
        try:
            self._session.feed_bytes(data)
            self.activity.audio(self._session.stream_seconds, time.monotonic())
            too_fast = self._pace.check(self._session.stream_seconds)
            if too_fast is not None:
                await self.fail(p.ErrorCode.TOO_FAST, too_fast, CLOSE_POLICY)
        except AudioFormatError as exc:
            await self.fail(p.ErrorCode.BAD_AUDIO, str(exc), CLOSE_POLICY)
        except ServerBusy as exc:
            await self.fail(p.ErrorCode.SERVER_BUSY, str(exc), CLOSE_TRY_LATER)


def add_routes(app: Any, server: ServerContext) -> None:
    """Register ``GET /v1/stream`` (harken's WebSocket protocol) on the aiohttp application.

    Its connections join ``server.connections``, which the server shuts down when it closes.
    """

    async def handler(request: Any) -> Any:
        web = import_aiohttp()
        cfg = server.config
        ws = web.WebSocketResponse(
            max_msg_size=max(cfg.max_audio_frame_bytes, cfg.max_control_bytes) * 2 + 1024,
            timeout=2.0, heartbeat=None, compress=False)  # PCM barely deflates
        await ws.prepare(request)
        server.stats.connections_total += 1
        name = server.session_name(request.remote or "?")
        await serve(Connection(server, ws, request, name), server.connections)
        return ws

    app.router.add_get(PATH, handler)
