"""The route of OpenAI Realtime transcription sessions: ``GET /v1/realtime``.

Checks the ``intent`` and the WebSocket upgrade, then serves one
:class:`~harken.server.openai_realtime.connection.RealtimeConnection` per client inside the
server's connection registry. The protocol is described in
:mod:`harken.server.openai_realtime`.

Thread: the handler runs on the server's asyncio event loop.
"""

from __future__ import annotations

import logging
from typing import Any

from ..connection_base import import_aiohttp, serve
from ..context import ServerContext
from .connection import RealtimeConnection

__all__ = ["PATH", "add_routes"]

logger = logging.getLogger(__name__)

PATH = "/v1/realtime"
"""The endpoint's path (clients add ``?intent=transcription``)."""


class _Hub:
    """Accepts Realtime clients into the server's registry (which shuts them down)."""

    def __init__(self, server: ServerContext) -> None:
        self._server = server

    async def handler(self, request: Any) -> Any:
        """Aiohttp handler of ``GET /v1/realtime``."""
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
        await serve(conn, server.connections)
        return ws


def _http_error(web: Any, status: int, message: str, param: str | None) -> Any:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param,
                      "code": None}}
    return web.json_response(body, status=status)


def add_routes(app: Any, server: ServerContext) -> None:
    """Register ``GET /v1/realtime`` (WebSocket) on the server's aiohttp app.

    Its connections join ``server.connections``, which the server shuts down when it closes.
    """
    app.router.add_get(PATH, _Hub(server).handler)
