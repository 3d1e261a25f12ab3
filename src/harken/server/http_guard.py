"""The server's HTTP perimeter: who may connect, from where, for how long, and what leaks out.

Every connection to the server's ports passes through here before any route runs:

- **Open connections** are capped (``ServerConfig.max_connections``, lowered to what the
  process's open-file limit leaves room for): beyond the cap a new connection gets a short
  ``503`` and is closed at once, so the listening socket keeps accepting (it never runs
  out of file descriptors) and the refusal is logged once per interval, not per connection.
- **Slow clients**: a connection must finish its request headers within
  ``header_timeout_s`` (also the idle time allowed between keep-alive requests); aiohttp's
  keep-alive timer enforces both.
- **Browsers** (:func:`make_middleware`): a ``Host`` header naming neither the bound address,
  ``localhost``, an IP literal nor an ``allow_hosts`` name gets ``421`` (a DNS-rebinding
  page sees nothing); a WebSocket upgrade or a state-changing request (POST, PUT,
  PATCH, DELETE) whose ``Origin`` is neither the server's own nor listed in
  ``allow_origins`` gets ``403``. Clients that send no ``Origin`` (SDKs, curl, RealtimeSTT's
  client) are not browsers and pass.
- **What answers reveal**: the ``Server`` header is ``harken`` (no Python or aiohttp
  version); a malformed request gets a short OpenAI-shaped ``400`` that does not echo the
  request line (which may carry ``?token=``), and is logged in one line without it.

Thread: everything runs on the server's asyncio event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .config import ServerConfig
from .registry import ConnectionRegistry

__all__ = ["SERVER_NAME", "ConnectionGate", "GuardSettings", "Perimeter", "error_body",
           "make_middleware", "open_file_room"]

logger = logging.getLogger(__name__)

SERVER_NAME = "harken"
"""The ``Server`` header of every answer."""

_LOG_EVERY_S = 10.0
"""Seconds between two log lines about refused connections."""
_FD_MARGIN = 32
"""File descriptors kept free for the engine's pipes, model files and logs."""
BACKLOG = 64
"""Connections the kernel queues for each listening socket. asyncio accepts up to this many
in one go before the cap sees them, and may accept another such burst before the refused
ones are closed: the cap keeps room for two."""
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error_body(message: str, code: str | None, param: str | None = None,
               kind: str = "invalid_request_error") -> dict[str, Any]:
    """An OpenAI-shaped error: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class GuardSettings:
    """What the perimeter checks (taken from the server's config when it starts)."""

    bound_host: str
    """The address the server binds."""
    allow_origins: tuple[str, ...] = ()
    """Browser origins allowed besides the server's own (``*``: any)."""
    allow_hosts: tuple[str, ...] = ()
    """Host names allowed besides the bound address, ``localhost`` and IP literals (``*``:
    any)."""


def _hostname(host_header: str) -> str:
    """The name in a ``Host`` header, lower-cased, without its port or IPv6 brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(settings: GuardSettings, host_header: str | None) -> bool:
    """Whether a request's ``Host`` header names this server (not a rebound name)."""
    if not host_header or "*" in settings.allow_hosts:
        return True
    name = _hostname(host_header)
    return (_is_ip(name) or name in ("localhost", settings.bound_host.lower())
            or name.endswith(".localhost") or name in (h.lower() for h in settings.allow_hosts))


def origin_allowed(settings: GuardSettings, origin: str | None, host_header: str | None
                   ) -> bool:
    """Whether a browser page at ``origin`` may use the server (None: not a browser)."""
    if origin is None or "*" in settings.allow_origins:
        return True
    origin = origin.strip().lower().rstrip("/")
    if origin in (o.lower().rstrip("/") for o in settings.allow_origins):
        return True
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and bool(host_header) \
        and rest == (host_header or "").strip().lower()


def make_middleware(settings: GuardSettings) -> Any:
    """The aiohttp middleware that checks ``Host`` and ``Origin`` before any route.

    Imports aiohttp (call it from ``Server.start()``).
    """
    from aiohttp import web

    @web.middleware
    async def guard(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        host = request.headers.get("Host")
        if not host_allowed(settings, host):
            logger.info("refused %s %s from %s: Host %r is not this server's name",
                        request.method, request.path, request.remote, host)
            return web.json_response(error_body(
                "the Host header does not name this server; start it with --allow-host "
                "NAME to serve that name", "host_not_allowed"), status=421)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if upgrade or request.method in _STATE_CHANGING:
            origin = request.headers.get("Origin")
            if not origin_allowed(settings, origin, host):
                logger.info("refused %s %s from %s: foreign origin %r", request.method,
                            request.path, request.remote, origin)
                return web.json_response(error_body(
                    "requests from this web page's origin are not allowed; start the "
                    "server with --allow-origin ORIGIN to allow it", "origin_not_allowed"),
                    status=403)
        return await handler(request)

    return guard


async def name_server(request: Any, response: Any) -> None:
    """``on_response_prepare`` hook: the ``Server`` header says ``harken`` only."""
    response.headers["Server"] = SERVER_NAME


def open_file_room(wanted: int) -> int:
    """``wanted`` connections, lowered to what the open-file limit leaves room for.

    Room is kept for the files open now, for two bursts of :data:`BACKLOG` connections
    accepted before any is refused, and for :data:`_FD_MARGIN` more.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        in_use = _FD_MARGIN
    return max(8, min(wanted, int(soft) - in_use - 2 * BACKLOG - _FD_MARGIN))


class _QuietLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's request-handler logger: one line per malformed request, no traceback.

    aiohttp logs a malformed request with its exception, whose text quotes the request line
    (which may carry ``?token=``); this logs the exception's type only, at most once per
    interval.
    """

    def __init__(self) -> None:
        super().__init__(logging.getLogger(f"{__name__}.requests"), {})
        self._last = 0.0
        self._skipped = 0

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        self._route(msg, args, exc_info)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        self._route(msg, args, kwargs.get("exc_info"))

    def _route(self, msg: object, args: tuple[object, ...], exc_info: Any) -> None:
        """A client's malformed request: one quiet line; anything else (a server bug) is
        logged in full.
        """
        from aiohttp.http_exceptions import HttpProcessingError

        if isinstance(exc_info, HttpProcessingError):
            self._one_line(exc_info)
        else:
            self.logger.error(msg, *args, exc_info=exc_info)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        pass

    def _one_line(self, exc_info: Any) -> None:
        now = time.monotonic()
        if now - self._last < _LOG_EVERY_S:
            self._skipped += 1
            return
        self._last = now
        kind = type(exc_info).__name__ if isinstance(exc_info, BaseException) else "error"
        self.logger.info("refused a malformed HTTP request (%s)%s", kind,
                         f"; {self._skipped} more since the last report" if self._skipped
                         else "")
        self._skipped = 0


def _handler_class(gate: ConnectionGate) -> Any:
    """Aiohttp's RequestHandler, counted by ``gate`` from creation to connection loss, with
    a short, non-echoing answer to malformed requests.
    """
    from aiohttp import web, web_protocol

    class Handler(web_protocol.RequestHandler):
        def connection_lost(self, exc: BaseException | None) -> None:
            gate.count -= 1
            super().connection_lost(exc)

        def handle_error(self, request: Any, status: int = 500, exc: Any = None,
                         message: str | None = None) -> Any:
            if status >= 500:
                logger.error("an HTTP request failed: %s", type(exc).__name__)
                text, code = "the server failed to answer the request", "internal"
            else:
                self.logger.exception("malformed request", exc_info=exc)
                text, code = "the request is not valid HTTP", "bad_request"
            resp = web.Response(status=status, text=json.dumps(error_body(text, code)),
                                content_type="application/json",
                                headers={"Server": SERVER_NAME})
            resp.force_close()
            return resp

    return Handler


class _Refuse(asyncio.Protocol):
    """A connection over the cap: a short 503, then close."""

    _ANSWER = (b"HTTP/1.1 503 Service Unavailable\r\nServer: harken\r\nRetry-After: 1\r\n"
               b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: ")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        body = json.dumps(error_body("the server has too many open connections; try "
                                     "again later", "server_busy")).encode()
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self._ANSWER + str(len(body)).encode() + b"\r\n\r\n" + body)
        transport.close()


class ConnectionGate:
    """Caps the open connections of every port of one server and builds their handlers.

    Args:
        max_connections: connections open at once over all ports (already lowered by
            :func:`open_file_room`).
        header_timeout_s: seconds to send a request's headers, and the idle time allowed
            between keep-alive requests.
    """

    def __init__(self, max_connections: int, header_timeout_s: float) -> None:
        self.max_connections = max_connections
        self._header_timeout_s = header_timeout_s
        self._handler: Any = None
        self.count = 0
        """Connections open (or being opened) now over all ports."""
        self._log = _QuietLog()
        self._last_refusal_log = 0.0
        self.refused = 0
        """Connections refused because of the cap."""

    def runner(self, app: Any, shutdown_timeout: float) -> Any:
        """An ``aiohttp.web.AppRunner`` for ``app`` with the gate's handler settings."""
        from aiohttp import web

        return web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout,
                             keepalive_timeout=self._header_timeout_s, logger=self._log)

    async def listen(self, runner: Any, host: str, port: int) -> int:
        """Start serving ``runner`` (set up) on ``host:port``; return the bound port."""
        from aiohttp import web

        if self._handler is None:
            self._handler = _handler_class(self)
        gate = self

        class Site(web.TCPSite):
            async def start(self) -> None:
                await web.BaseSite.start(self)
                server = self._runner.server
                loop = asyncio.get_running_loop()
                self._server = await loop.create_server(
                    lambda: gate._protocol(server, loop), self._host, self._port,
                    backlog=BACKLOG, reuse_address=self._reuse_address)

        site = Site(runner, host, port)
        await site.start()
        server: Any = site._server
        sockets = server.sockets if server is not None else []
        return int(sockets[0].getsockname()[1]) if sockets else port

    def _protocol(self, server: Any, loop: asyncio.AbstractEventLoop) -> asyncio.Protocol:
        if self.count >= self.max_connections:
            self.refused += 1
            now = time.monotonic()
            if now - self._last_refusal_log >= _LOG_EVERY_S:
                self._last_refusal_log = now
                logger.warning("refusing connections: %d are open (the limit is %d); %d "
                               "refused so far", self.count, self.max_connections, self.refused)
            return _Refuse()
        handler: asyncio.Protocol = self._handler(
            server, loop=loop, keepalive_timeout=self._header_timeout_s, logger=self._log,
            access_log=None)
        self.count += 1
        return handler


class Perimeter:
    """What every port of one server runs in front of its routes: the connection gate, the
    ``Host``/``Origin`` checks, the per-address WebSocket limit and the ``Server`` header.

    Args:
        config: the server's settings.
        connections: the server's WebSocket registry (for the per-address limit).
    """

    def __init__(self, config: ServerConfig, connections: ConnectionRegistry) -> None:
        self._config = config
        self._connections = connections
        self.gate = ConnectionGate(config.max_connections, config.header_timeout_s)
        """Caps the open connections of all the server's ports."""

    def application(self, *middlewares: Any, **kwargs: Any) -> Any:
        """An ``aiohttp.web.Application`` behind the perimeter; ``middlewares`` run after
        its checks (e.g. the token's).
        """
        from aiohttp import web

        cfg = self._config
        guard = make_middleware(GuardSettings(cfg.host, cfg.allow_origins, cfg.allow_hosts))
        app = web.Application(middlewares=[guard, self._per_address(), *middlewares],
                              **kwargs)
        app.on_response_prepare.append(name_server)
        return app

    def _per_address(self) -> Any:
        from aiohttp import web

        registry, limit = self._connections, self._config.max_connections_per_address

        @web.middleware
        async def per_address(request: Any, handler: Any) -> Any:
            if request.headers.get("Upgrade", "").lower() == "websocket" \
                    and registry.full(str(request.remote or "?")):
                logger.info("refused a WebSocket from %s: it has %d open", request.remote,
                            limit)
                return web.json_response(error_body(
                    f"this address has {limit} WebSocket connections open already",
                    "too_many_connections"), status=429)
            return await handler(request)

        return per_address

    async def serve(self, app: Any, host: str, port: int) -> tuple[Any, int]:
        """Set ``app`` up behind the gate on ``host:port``; return its runner (to clean up)
        and the bound port.
        """
        self.gate.max_connections = open_file_room(self._config.max_connections)
        # On shutdown, HTTP transcriptions in flight get the drain timeout to finish.
        runner = self.gate.runner(app, self._config.drain_timeout_s)
        await runner.setup()
        try:
            bound = await self.gate.listen(runner, host, port)
        except BaseException:
            await runner.cleanup()
            raise
        return runner, bound
