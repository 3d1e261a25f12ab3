"""harken's WebSocket protocol on the server: one :class:`Connection` per client.

A connection owns a :class:`~harken.server.session.StreamSession` (its pipeline and VAD) and
a bounded queue of outgoing messages drained by a sender task, so a client that does not
read is disconnected ("too_slow") instead of growing the server's memory. Malformed input
(bad JSON, audio before "start", a bad encoding, an oversize message, audio faster than the
configured rate) gets an error message and closes this connection only.

Thread: everything runs on the server's asyncio event loop, in the aiohttp handler task of
the connection plus its sender task.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from ..errors import AudioFormatError, BackendNotInstalled, ConfigError, HarkenError, ProtocolError
from ..events import ErrorEvent, Event
from . import protocol as p
from .engine_host import ServerBusy
from .session import StreamSession

if TYPE_CHECKING:
    from .app import Server

__all__ = ["CLOSE_GOING_AWAY", "CLOSE_INTERNAL", "Connection", "import_aiohttp"]

logger = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
"""WebSocket close code: the server is shutting down."""
CLOSE_POLICY = 1008
"""WebSocket close code: the client broke the protocol."""
CLOSE_TOO_BIG = 1009
"""WebSocket close code: a message was too large."""
CLOSE_INTERNAL = 1011
"""WebSocket close code: the server or its engine failed."""
CLOSE_TRY_LATER = 1013
"""WebSocket close code: the server is busy."""


def import_aiohttp() -> Any:
    try:
        import aiohttp.web as web
    except ImportError:
        raise BackendNotInstalled("aiohttp", "server", "The harken server") from None
    return web


class Connection:
    """One WebSocket client of harken's protocol (runs in the aiohttp handler task).

    Args:
        server: the running server (its config, host, VAD factory and stats).
        ws: the prepared ``aiohttp.web.WebSocketResponse``.
        request: the aiohttp request (for aborting its transport).
        name: the session's name, for logs and the "ready" message.
    """

    def __init__(self, server: Server, ws: Any, request: Any, name: str) -> None:
        self._server = server
        self._ws = ws
        self._request = request
        self.name = name
        self._out: asyncio.Queue[str | None] = asyncio.Queue(server.config.send_queue)
        self._session = StreamSession(server.host, name, self._on_event,
                                      vad_config=server.config.vad)
        self._closing = False
        self._close_code = CLOSE_GOING_AWAY
        self._sender: asyncio.Task[None] | None = None
        self._close_task: asyncio.Future[Any] | None = None
        self._audio_started = 0.0
        """time.monotonic() of the stream's "start"."""

    # -------------------------------------------------------------- outgoing

    def send(self, message: p.ServerMessage) -> None:
        """Queue a message; a full queue means the client stopped reading: drop it."""
        if self._closing:
            return
        try:
            self._out.put_nowait(p.encode(message))
        except asyncio.QueueFull:
            logger.warning("client %s does not read its messages; disconnecting it", self.name)
            self._server.stats.closed_by_error[p.ErrorCode.TOO_SLOW] = \
                self._server.stats.closed_by_error.get(p.ErrorCode.TOO_SLOW, 0) + 1
            self._closing = True
            self._abort()

    def _abort(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def _send_loop(self) -> None:
        while True:
            text = await self._out.get()
            if text is None:
                return
            try:
                await self._ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:
                logger.debug("client %s: send failed: %s", self.name, exc)
                self._closing = True
                return

    def _on_event(self, event: Event) -> None:
        if isinstance(event, ErrorEvent):
            self.send(p.Error(str(event.error), p.ErrorCode.ENGINE))
            if event.fatal:
                self._fail_soon(CLOSE_INTERNAL)
            return
        message = p.from_event(event)
        if message is None:
            return
        if isinstance(message, p.Final):
            self._server.stats.finals_sent += 1
        elif isinstance(message, p.Partial):
            self._server.stats.partials_sent += 1
        self.send(message)

    def _fail_soon(self, code: int) -> None:
        if not self._closing:
            self._close_code = code
            self.send_final_and_close()

    def send_final_and_close(self) -> None:
        """Let the sender finish what is queued, then close the socket."""
        with contextlib.suppress(asyncio.QueueFull):
            self._out.put_nowait(None)
        self._closing = True
        # Closing the socket ends the handler's receive loop, whose cleanup leaves the host.
        self._close_task = asyncio.ensure_future(self._ws.close(code=self._close_code))

    # -------------------------------------------------------------- lifecycle

    async def fail(self, code: str, message: str, close_code: int) -> None:
        """Send an error, then close the connection (the session ends)."""
        stats = self._server.stats.closed_by_error
        stats[code] = stats.get(code, 0) + 1
        logger.info("client %s: %s (%s)", self.name, message, code)
        self.send(p.Error(message, code))
        self._close_code = close_code
        self._closing = True
        await self._finish_sending()

    async def _finish_sending(self) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._out.put_nowait(None)
        sender = self._sender
        if sender is not None:
            try:
                await asyncio.wait_for(asyncio.shield(sender), 2.0)
            except asyncio.TimeoutError:
                sender.cancel()
                self._abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code=self._close_code), 2.0)

    async def run(self) -> None:
        """Serve the connection until it closes."""
        self._sender = asyncio.create_task(self._send_loop())
        try:
            try:
                self._session.open()
            except ServerBusy as exc:
                self._server.stats.rejected_total += 1
                await self.fail(p.ErrorCode.SERVER_BUSY, str(exc), CLOSE_TRY_LATER)
                return
            except HarkenError as exc:
                await self.fail(p.ErrorCode.INTERNAL, str(exc), CLOSE_INTERNAL)
                return
            await self._receive_loop()
            if not self._closing:
                await self._finish_sending()
        finally:
            self._session.close()
            if self._sender is not None and not self._sender.done():
                self._sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._sender

    async def shutdown(self, timeout: float) -> None:
        """Server shutdown: finish this stream's finals (bounded), then close."""
        if self._closing:
            return
        if self._session.started:
            self._session.flush()
            await self._session.drain(timeout)
            self.send(p.Stopped())
        self.send(p.Error("the server is shutting down", p.ErrorCode.SHUTDOWN))
        self._close_code = CLOSE_GOING_AWAY
        self._closing = True
        await self._finish_sending()

    async def _receive_loop(self) -> None:
        web = import_aiohttp()
        msg_type = web.WSMsgType
        config = self._server.config
        while not self._closing:
            msg = await self._ws.receive()
            if self._closing:
                return
            if msg.type == msg_type.TEXT:
                await self._on_text(msg.data)
            elif msg.type == msg_type.BINARY:
                await self._on_audio(msg.data)
            elif msg.type == msg_type.ERROR:
                exc = self._ws.exception()
                if "size" in str(exc).lower() or "too big" in str(exc).lower():
                    await self.fail(p.ErrorCode.TOO_LARGE,
                                    f"message too large: {exc}; the limit is "
                                    f"{config.max_audio_frame_bytes} bytes", CLOSE_TOO_BIG)
                return
            else:  # CLOSE, CLOSING, CLOSED
                return

    async def _on_text(self, text: str) -> None:
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
        realtime = config.realtime
        if not message.partials and realtime.partials:
            realtime = dataclasses.replace(realtime, partials=False)
        try:
            vad = self._server.vads.create()
            self._session.begin(vad, realtime, sample_rate=message.sample_rate,
                                encoding=message.encoding, channels=message.channels,
                                language=message.language)
        except (AudioFormatError, ConfigError) as exc:
            await self.fail(p.ErrorCode.BAD_MESSAGE, str(exc), CLOSE_POLICY)
            return
        except ServerBusy as exc:
            await self.fail(p.ErrorCode.SERVER_BUSY, str(exc), CLOSE_TRY_LATER)
            return
        self._audio_started = time.monotonic()
        self.send(p.Ready(self.name, message.sample_rate))

    async def _on_audio(self, data: bytes) -> None:
        config = self._server.config
        if not self._session.started:
            await self.fail(p.ErrorCode.NOT_STARTED, 'audio arrived before "start"; send '
                            '{"type": "start", "sample_rate": ...} first', CLOSE_POLICY)
            return
        if len(data) > config.max_audio_frame_bytes:
            await self.fail(p.ErrorCode.TOO_LARGE, f"audio message of {len(data)} bytes is "
                            f"longer than the {config.max_audio_frame_bytes} bytes accepted",
                            CLOSE_TOO_BIG)
            return
        try:
            self._session.feed_bytes(data)
            rate = config.max_audio_rate
            if rate is not None:
                allowed = config.audio_burst_s + rate * (time.monotonic() - self._audio_started)
                if self._session.stream_seconds > allowed:
                    await self.fail(p.ErrorCode.TOO_FAST,
                                    f"audio arrives faster than {rate:g} times real time "
                                    f"({self._session.stream_seconds:.1f} s of audio in "
                                    f"{time.monotonic() - self._audio_started:.1f} s)",
                                    CLOSE_POLICY)
        except AudioFormatError as exc:
            await self.fail(p.ErrorCode.BAD_AUDIO, str(exc), CLOSE_POLICY)
        except ServerBusy as exc:
            await self.fail(p.ErrorCode.SERVER_BUSY, str(exc), CLOSE_TRY_LATER)
