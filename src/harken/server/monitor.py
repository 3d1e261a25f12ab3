"""The operator view's feed: ``GET /v1/monitor`` (WebSocket) pushes what the server is doing.

Every ``interval_s`` seconds each viewer gets one JSON message (``"type": "snapshot"``)
built by :func:`snapshot`: the engine's queue depth, requests in the engine, real-time
factor, restarts and each engine process's state (the numbers ``/metrics`` renders, read
from the same
:class:`~harken.server.engine_host.EngineHost` attributes), and one row per open
connection of any protocol with its duration, audio, last final and its end-of-speech ->
final latency (:class:`~harken.server.activity.Activity`). One socket per viewer, whatever
the number of sessions: nothing is polled per session. The viewer's messages are ignored.

With ``ServerConfig.token`` set, the token middleware guards it like every other route
(browsers pass ``?token=`` on a WebSocket). A viewer joins the server's
:class:`~harken.server.registry.ConnectionRegistry`, so the server's close ends it; it is
not listed as a session itself.

Thread: the handler runs on the server's asyncio event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from .activity import Activity
from .connection_base import CLOSE_GOING_AWAY, import_aiohttp
from .context import ServerContext

__all__ = ["PATH", "MonitorViewer", "add_routes", "snapshot"]

logger = logging.getLogger(__name__)

PATH = "/v1/monitor"
"""The endpoint's path."""

_SEND_TIMEOUT_S = 5.0
"""A viewer that does not take a snapshot within this many seconds is disconnected."""


def snapshot(server: ServerContext, now: float) -> dict[str, Any]:
    """What the server is doing now, as a JSON-ready message.

    Args:
        server: the running server.
        now: ``time.monotonic()`` seconds.
    """
    host = server.engine
    rows = []
    for conn in server.connections:
        activity = getattr(conn, "activity", None)
        if isinstance(activity, Activity):  # sessions, not viewers
            rows.append(activity.describe(str(getattr(conn, "name", "?")), now))
    rows.sort(key=lambda row: str(row["name"]))
    return {"type": "snapshot", "sessions": host.sessions, "max_sessions": host.max_sessions,
            "queue_depth": host.queued, "in_engine": host.in_engine,
            "rtf": round(host.rtf, 4), "engine_restarts": host.restarts,
            "finals_sent": server.stats.finals_sent, "engines": host.engines,
            "connections": rows}


class MonitorViewer:
    """One operator view's WebSocket: pushes a snapshot every ``interval_s`` seconds.

    Args:
        server: the running server.
        ws: the prepared ``aiohttp.web.WebSocketResponse``.
        interval_s: seconds between snapshots.
    """

    def __init__(self, server: ServerContext, ws: Any, interval_s: float) -> None:
        self._server = server
        self._ws = ws
        self._interval_s = interval_s
        self._closing = False

    async def run(self) -> None:
        """Push snapshots until the viewer leaves, stops reading or the server closes."""
        msg_type = import_aiohttp().WSMsgType
        while not self._closing:
            text = json.dumps(snapshot(self._server, time.monotonic()), ensure_ascii=False,
                              separators=(",", ":"))
            try:
                await asyncio.wait_for(self._ws.send_str(text), _SEND_TIMEOUT_S)
                msg = await self._ws.receive(timeout=self._interval_s)
            except asyncio.TimeoutError:
                continue
            except (ConnectionError, RuntimeError):
                return
            if msg.type not in (msg_type.TEXT, msg_type.BINARY):
                return  # closed, closing or an error

    async def shutdown(self, timeout: float) -> None:
        """The server closes: end the feed (bounded by 2 s, whatever ``timeout``)."""
        self._closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code=CLOSE_GOING_AWAY), 2.0)


def add_routes(app: Any, server: ServerContext, interval_s: float = 0.5) -> None:
    """Register ``GET /v1/monitor`` on the aiohttp application.

    Args:
        app: the ``aiohttp.web.Application`` being built.
        server: the running server.
        interval_s: seconds between snapshots.
    """

    async def handler(request: Any) -> Any:
        web = import_aiohttp()
        ws = web.WebSocketResponse(max_msg_size=4096, heartbeat=None)
        await ws.prepare(request)
        if server.connections.closing:
            await ws.close(code=CLOSE_GOING_AWAY)
            return ws
        viewer = MonitorViewer(server, ws, interval_s)
        # Counted per address like every socket, so viewers share the per-address cap.
        server.connections.add(viewer, str(request.remote or "?"))
        try:
            await viewer.run()
        finally:
            server.connections.discard(viewer)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        return ws

    app.router.add_get(PATH, handler)
