"""What the server's three WebSocket protocols share: outgoing queue, closing, limits.

harken's own protocol (:mod:`.websocket`), OpenAI Realtime (:mod:`.openai_realtime`) and
RealtimeSTT's data socket (:mod:`.rtstt.socket`) each serve a client with a subclass of
:class:`WsConnection`, which owns:

- a bounded queue of outgoing text messages drained by a sender task, so a client that does
  not read is disconnected ("too_slow") instead of growing the server's memory;
- the error-then-close sequence (:meth:`WsConnection.fail`) and a graceful close bounded in
  time (the sender gets 2 s to flush, the close handshake 2 s more);
- the receive loop, which hands text, binary and error frames to the protocol's hooks, and
  closes the connection ("timeout") when no valid start came within
  ``ServerConfig.admit_timeout_s`` of connecting (the subclass calls
  :meth:`WsConnection.admit` on it) or nothing came for ``idle_timeout_s`` after;
- the server's shutdown of a connection (finish what is being transcribed, then close with
  1012 "service restart", the code that tells a client to reconnect, e.g. through a load
  balancer to another replica).

A subclass says how its protocol renders an error (:meth:`WsConnection.send_error`) and what
each kind of frame means. :class:`AudioPace` is the audio rate limit
(``ServerConfig.max_audio_rate``); :func:`serve` runs a connection inside the server's
:class:`~harken.server.registry.ConnectionRegistry`.

Thread: everything runs on the server's asyncio event loop (each connection's aiohttp handler
task plus its sender task); nothing here blocks.

It is one piece (over the ~400-line guide) because the queue, the close sequence and the
receive loop's time limits interlock: each decides when the others stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, ClassVar

from ..errors import BackendNotInstalled, HarkenError
from .activity import Activity
from .context import ServerContext
from .engine_host import ServerBusy
from .registry import ConnectionRegistry
from .session import StreamSession

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL",
    "CLOSE_POLICY",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_LATER",
    "AudioPace",
    "WsConnection",
    "import_aiohttp",
    "is_size_error",
    "oversize",
    "serve",
]

logger = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
"""WebSocket close code: the server is shutting down."""
CLOSE_POLICY = 1008
"""WebSocket close code: the client broke the protocol."""
CLOSE_TOO_BIG = 1009
"""WebSocket close code: a message was too large."""
CLOSE_INTERNAL = 1011
"""WebSocket close code: the server or its engine failed."""
CLOSE_SERVICE_RESTART = 1012
"""WebSocket close code: the server is draining (SIGTERM); reconnect, through the load
balancer, to another replica."""
CLOSE_TRY_LATER = 1013
"""WebSocket close code: the server is busy."""

_FLUSH_TIMEOUT_S = 2.0
"""Seconds the sender may take to send what is queued before a close."""
_CLOSE_TIMEOUT_S = 2.0
"""Seconds the WebSocket close handshake may take."""


def import_aiohttp() -> Any:
    """Import ``aiohttp.web`` (the ``server`` extra).

    Raises:
        BackendNotInstalled: aiohttp is missing.
    """
    try:
        import aiohttp.web as web
    except ImportError:
        raise BackendNotInstalled("aiohttp", "server", "The harken server") from None
    return web


class AudioPace:
    """The audio rate limit: at most ``rate`` seconds of audio per second of wall time.

    The clock starts at :meth:`restart` (or at the first :meth:`check`); the client may be
    ``burst_s`` seconds of audio ahead of the limit.

    Args:
        rate: ``ServerConfig.max_audio_rate`` (None: no limit).
        burst_s: ``ServerConfig.audio_burst_s``, in seconds of audio.
    """

    def __init__(self, rate: float | None, burst_s: float) -> None:
        self._rate = rate
        self._burst_s = burst_s
        self._since: float | None = None

    def restart(self) -> None:
        """Start counting wall time now (a new stream)."""
        self._since = time.monotonic()

    def check(self, audio_s: float) -> str | None:
        """Whether ``audio_s`` seconds of audio since the start are too many.

        Returns:
            None if the pace is fine, else the error message for the client.
        """
        if self._rate is None:
            return None
        now = time.monotonic()
        if self._since is None:
            self._since = now
        elapsed = now - self._since
        if audio_s <= self._burst_s + self._rate * elapsed:
            return None
        return (f"audio arrives faster than {self._rate:g} times real time "
                f"({audio_s:.1f} s of audio in {elapsed:.1f} s)")


def oversize(what: str, size: int, limit: int) -> str | None:
    """The error message for a ``size``-byte ``what`` over ``limit`` bytes, else None."""
    if size <= limit:
        return None
    return f"{what} of {size} bytes is longer than the {limit} bytes accepted"


class WsConnection:
    """The protocol-independent part of one WebSocket client (runs in its handler task).

    Subclasses implement :meth:`send_error` and the ``on_*`` hooks, and may override
    :meth:`start_serving`, :meth:`close_session` and :meth:`drain_for_shutdown`.

    Args:
        server: the running server's context (its config, engine, VAD factory and stats).
        ws: the prepared ``aiohttp.web.WebSocketResponse``.
        request: the aiohttp request (for aborting its transport).
        name: the session's name, for logs.
    """

    label: ClassVar[str] = "client"
    """How logs name this protocol's clients."""
    protocol: ClassVar[str] = "websocket"
    """The protocol's short name in the operator view (:mod:`.monitor`)."""
    shutdown_code: ClassVar[str] = "shutting_down"
    """The error code sent when the server shuts down."""
    shutdown_close: ClassVar[int] = CLOSE_SERVICE_RESTART
    """The WebSocket close code on server shutdown: 1012 tells a client to reconnect."""
    internal_code: ClassVar[str] = "internal"
    """The error code sent when the server has a bug."""
    task_prefix: ClassVar[str] = "harken-send"
    """Prefix of the sender task's name."""
    timeout_code: ClassVar[str] = "timeout"
    """The error code sent when the client sent no valid start, or nothing, in time."""

    def __init__(self, server: ServerContext, ws: Any, request: Any, name: str) -> None:
        self._server = server
        self._ws = ws
        self._request = request
        self.name = name
        self.address = str(request.remote or "?")
        """The client's address (for the per-address connection limit)."""
        self._admit_by = time.monotonic() + server.config.admit_timeout_s
        self._admitted = False
        self._out: asyncio.Queue[str | None] = asyncio.Queue(server.config.send_queue)
        self._closing = False
        self._close_code = CLOSE_GOING_AWAY
        self._sender: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self.activity = Activity(self.protocol, time.monotonic())
        """Audio arrival, finals and E2F, for the operator view."""

    # -------------------------------------------------------------- outgoing

    def put(self, text: str) -> None:
        """Queue an encoded message; a full queue means the client stopped reading.

        Such a client is disconnected at once ("too_slow"); messages queued while the
        connection closes are dropped.
        """
        if self._closing:
            return
        try:
            self._out.put_nowait(text)
        except asyncio.QueueFull:
            logger.warning("%s %s does not read its messages; disconnecting it",
                           self.label, self.name)
            self.count_closed("too_slow")
            self._closing = True
            self._abort()

    def count_closed(self, code: str) -> None:
        """Count a connection closed because of the error ``code`` (for /metrics)."""
        stats = self._server.stats.closed_by_error
        stats[code] = stats.get(code, 0) + 1

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
                logger.debug("%s %s: send failed: %s", self.label, self.name, exc)
                self._closing = True
                return

    def _start_sender(self) -> asyncio.Task[None]:
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_loop(),
                                               name=f"{self.task_prefix}-{self.name}")
        return self._sender

    async def _finish_sending(self) -> None:
        """Let the sender send what is queued (bounded), then close the socket (bounded).

        Starts the sender if none runs yet: a connection refused before :meth:`run` (the
        server is draining) still sends its error before the close.
        """
        with contextlib.suppress(asyncio.QueueFull):
            self._out.put_nowait(None)
        sender = self._start_sender()
        if sender is not None and not sender.done():
            try:
                await asyncio.wait_for(asyncio.shield(sender), _FLUSH_TIMEOUT_S)
            except asyncio.TimeoutError:
                sender.cancel()
                self._abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code=self._close_code), _CLOSE_TIMEOUT_S)

    def _begin_close(self, close_code: int) -> asyncio.Task[None]:
        """The one closing task: send what is queued, then close with ``close_code`` (the
        first caller's code). :meth:`run` waits for it before it returns, whichever task
        began it: the handler returning first would let aiohttp close the socket itself
        (code 1000) and drop what is still queued (a drained client's "stopped").
        """
        if self._close_task is None:
            self._close_code = close_code
            self._closing = True
            self._close_task = asyncio.create_task(self._finish_sending(),
                                                   name=f"harken-close-{self.name}")
        return self._close_task

    async def close_with(self, close_code: int) -> None:
        """Stop queueing, send what is queued, then close with ``close_code`` (bounded)."""
        await asyncio.shield(self._begin_close(close_code))

    def close_soon(self, close_code: int) -> None:
        """From a callback: close with ``close_code`` once the queue is sent.

        Closing the socket ends the receive loop, whose cleanup leaves the engine host.
        Does nothing if the connection is already closing.
        """
        if not self._closing:
            self._begin_close(close_code)

    # -------------------------------------------------------------- errors

    def send_error(self, code: str, message: str) -> None:
        """Queue this protocol's error message (subclasses render it)."""
        raise NotImplementedError

    async def fail(self, code: str, message: str, close_code: int) -> None:
        """Send an error, then close the connection (its session ends)."""
        self.count_closed(code)
        logger.info("%s %s: %s (%s)", self.label, self.name, message, code)
        self.send_error(code, message)
        await self.close_with(close_code)

    async def open_session(self, session: StreamSession) -> bool:
        """Open ``session`` on the engine host; on failure tell the client and close.

        Returns:
            True if the session is open.
        """
        try:
            session.open()
        except ServerBusy as exc:
            self._server.stats.rejected_total += 1
            await self.fail("server_busy", str(exc), CLOSE_TRY_LATER)
            return False
        except HarkenError as exc:
            await self.fail(self.internal_code, str(exc), CLOSE_INTERNAL)
            return False
        return True

    # -------------------------------------------------------------- lifecycle

    async def run(self) -> None:
        """Serve the connection until it closes."""
        sender = self._start_sender()
        try:
            if not await self.start_serving():
                return
            await self._receive_loop()
            if not self._closing:
                await self.close_with(self._close_code)
        finally:
            self.close_session()
            close_task = self._close_task
            if close_task is not None and not close_task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await close_task
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sender

    async def shutdown(self, timeout: float) -> None:
        """Server shutdown: finish what is being transcribed (bounded), then close with
        ``shutdown_close`` (1012 unless the protocol says otherwise), which tells the client
        to reconnect elsewhere.
        """
        if self._closing:
            return
        await self.drain_for_shutdown(timeout)
        self.send_error(self.shutdown_code, "the server is shutting down; reconnect")
        await self.close_with(self.shutdown_close)

    def admit(self) -> None:
        """The client sent a valid start: from now on only the idle timeout applies."""
        self._admitted = True

    def _wait_limit(self) -> tuple[float, str]:
        """Seconds the next message may take, and the error if it does not come."""
        if not self._admitted:
            return (max(0.0, self._admit_by - time.monotonic()),
                    f"no valid start within {self._server.config.admit_timeout_s:g} s of "
                    "connecting")
        idle = self._server.config.idle_timeout_s
        return idle, f"nothing received for {idle:g} s"

    async def _receive_loop(self) -> None:
        msg_type = import_aiohttp().WSMsgType
        while not self._closing:
            limit, why = self._wait_limit()
            try:
                msg = await self._ws.receive(timeout=limit)
            except asyncio.TimeoutError:
                await self.fail(self.timeout_code, f"closed: {why}", CLOSE_POLICY)
                return
            if self._closing:
                return
            if msg.type == msg_type.TEXT:
                await self.on_text(msg.data)
            elif msg.type == msg_type.BINARY:
                await self.on_binary(msg.data)
            elif msg.type == msg_type.ERROR:
                await self.on_ws_error(self._ws.exception())
                return
            else:  # CLOSE, CLOSING, CLOSED
                return

    # -------------------------------------------------------------- protocol hooks

    async def start_serving(self) -> bool:
        """Before the receive loop: open the session, greet the client.

        Returns:
            False if the connection was closed instead.
        """
        return True

    async def on_text(self, text: str) -> None:
        """A text frame arrived."""

    async def on_binary(self, data: bytes) -> None:
        """A binary frame arrived."""

    async def on_ws_error(self, exc: BaseException | None) -> None:
        """The WebSocket failed (aiohttp's ERROR frame: oversize or malformed)."""

    def close_session(self) -> None:
        """When the connection ends: leave the engine host."""

    async def drain_for_shutdown(self, timeout: float) -> None:
        """On server shutdown: end the open utterance and wait for finals (bounded)."""


def is_size_error(exc: BaseException | None) -> bool:
    """Whether aiohttp's WebSocket error says a message was too big."""
    text = str(exc).lower()
    return "size" in text or "too big" in text


async def serve(conn: WsConnection, registry: ConnectionRegistry) -> None:
    """Run ``conn`` until it closes, counted in ``registry`` meanwhile.

    A registry that is shutting down refuses it; a bug in the connection is reported to that
    client only.
    """
    if registry.closing:
        await conn.fail(conn.shutdown_code, "the server is shutting down; reconnect",
                        conn.shutdown_close)
        return
    registry.add(conn, conn.address)
    try:
        await conn.run()
    except Exception as exc:  # a bug: report it to this client only
        logger.exception("%s session %s failed", conn.label, conn.name)
        with contextlib.suppress(Exception):
            await conn.fail(conn.internal_code, f"{type(exc).__name__}: {exc}", CLOSE_INTERNAL)
    finally:
        registry.discard(conn)
