"""The harken server: WebSocket streaming, OpenAI-compatible HTTP, health and metrics.

Routes:

- ``GET /v1/stream`` (WebSocket): harken's own protocol (:mod:`harken.server.protocol`,
  served by :mod:`harken.server.websocket`).
- ``GET /v1/realtime`` (WebSocket): OpenAI Realtime transcription sessions
  (:mod:`harken.server.openai_realtime`).
- ``POST /v1/audio/transcriptions``: OpenAI-compatible file transcription
  (:mod:`harken.server.openai_api`).
- ``POST /v1/audio/speech``: OpenAI-compatible streamed speech (:mod:`harken.server.speech`).
- ``GET /health`` (JSON; readiness: 200 when ready for new sessions, 503 while draining or
  after the engine failed), ``GET /livez`` (liveness: 200 while the process serves, draining
  included) and ``GET /metrics`` (Prometheus text). The port opens only once the engine is
  loaded, so a probe during loading fails to connect: not ready.
- ``GET /``: a browser page that streams the microphone, speaks text back and shows the
  server at work (:mod:`harken.server.web`).
- ``GET /v1/monitor`` (WebSocket): the operator view's feed (:mod:`harken.server.monitor`).
- ``GET /rtstt/control`` and ``GET /rtstt/data`` (WebSockets): RealtimeSTT's protocol, for
  its ``AudioToTextRecorderClient`` (:mod:`harken.server.rtstt`); with
  ``ServerConfig.rtstt_ports`` also at ``/`` on RealtimeSTT's two ports.

Structure: this is the one module that imports the protocol modules. Each of them is written
against :class:`~harken.server.context.ServerContext` (config, engine, vads, stats,
connections, session naming), which :class:`Server` provides, and adds its routes with an
``add_routes(app, context)`` function. :class:`~harken.server.config.ServerConfig` lives in
:mod:`harken.server.config` and is importable from here.

Every port runs behind :class:`~harken.server.http_guard.Perimeter` (a connection cap,
header timeouts, ``Host`` and ``Origin`` checks, a per-address WebSocket limit, no versions
in answers). With ``ServerConfig.token`` set, an aiohttp middleware
(:mod:`harken.server.auth`) then asks every route but ``GET /`` and ``/health`` for
``Authorization: Bearer <token>``.

Stack: aiohttp (the ``server`` extra). It gives an HTTP server, WebSockets and multipart
request bodies in one package on one event loop; ``websockets`` alone has no multipart POST
bodies, and adding a second framework for HTTP would split the server over two stacks.
aiohttp is imported in :meth:`Server.start`, never at import time.

Threads: the server runs on one asyncio event loop (the caller's, or the "harken-server"
thread of :class:`BackgroundServer`). Every session's pipeline and VAD run on that loop;
transcription runs in the engine processes (``ServerConfig.engines``) shared through
:class:`~harken.server.engine_host.EngineHost`, whose answers hop back onto the loop.
Each connection has a bounded outgoing queue: a client that does not read its messages is
disconnected ("too_slow") instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
import time
from typing import Any

from .._threads import join_thread
from ..errors import ConfigError, LifecycleError
from . import monitor, openai_api, openai_realtime, speech, web, websocket
from .auth import has_token, make_middleware
from .config import ServerConfig
from .connection_base import import_aiohttp
from .context import ServerStats
from .engine_host import EngineFactory, EngineHost
from .engine_pool import pool_engine
from .http_guard import Perimeter
from .metrics import Metric, render
from .registry import ConnectionRegistry
from .rtstt import RtsttHub
from .vads import VadFactory

__all__ = ["BackgroundServer", "Server", "ServerConfig"]

logger = logging.getLogger(__name__)

class Server:
    """A harken server on an asyncio loop: ``await start()``, then ``await close()``.

    Args:
        config: the server's settings.
        engine_factory: for tests: builds the engine runner instead of an EngineProcess.
    """

    def __init__(self, config: ServerConfig | None = None, *,
                 engine_factory: EngineFactory | None = None) -> None:
        if config is not None and not isinstance(config, ServerConfig):
            raise ConfigError(f"config must be a ServerConfig, got {type(config).__name__}")
        self.config = config or ServerConfig()
        engine_config, engines = pool_engine(self.config.engine, self.config.engines,
                                             self.config.engine_threads)
        self.engine = EngineHost(engine_config, engines=engines,
                                 max_sessions=self.config.max_sessions,
                                 max_queued=self.config.max_queued_finals,
                                 max_in_engine=self.config.max_in_engine,
                                 fast_finals_at=self.config.fast_finals_at,
                                 start_timeout_s=self.config.start_timeout_s,
                                 engine_factory=engine_factory)
        """The engine host: a pool of engine processes shared by every session."""
        self.stats = ServerStats()
        self.vads = VadFactory(self.config.vad)
        """Builds each session's detector on one shared Silero model."""
        self._runner: Any = None
        self.rtstt: RtsttHub | None = None
        """RealtimeSTT's endpoints (set by :meth:`start`)."""
        self.speech = speech.SpeechRoute(self)
        """``POST /v1/audio/speech`` and its speech engine programs."""
        self._port: int | None = None
        self.connections = ConnectionRegistry(self.config.max_connections_per_address)
        """Every open WebSocket connection, whatever its protocol (harken's, OpenAI
        Realtime, RealtimeSTT's control and data sockets)."""
        self._ids = itertools.count(1)
        self.perimeter = Perimeter(self.config, self.connections)
        """What every port runs in front of its routes (:mod:`.http_guard`)."""
        self._started = False
        self._closed = False
        self._started_at = 0.0
        self.draining = False
        """True from the start of :meth:`close`: ``/health`` answers 503 ("draining") so a
        load balancer sends new clients elsewhere, while open sessions finish."""

    @property
    def port(self) -> int:
        """The TCP port the server listens on (useful with port 0).

        Raises:
            LifecycleError: the server is not started.
        """
        if self._port is None:
            raise LifecycleError("the server is not started: await start() first")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.config.host}:{self.port}"

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Load the engine, then listen.

        Raises:
            BackendNotInstalled: aiohttp is missing (the ``server`` extra).
            LifecycleError: started twice.
            WorkerError: the engine did not load.
            OSError: the address is in use.
        """
        import_aiohttp()  # BackendNotInstalled before anything starts
        if self._started:
            raise LifecycleError("Server.start() called twice; create a new Server")
        self._started = True
        self._started_at = time.monotonic()
        await asyncio.to_thread(self.vads.load)
        await self.engine.start()
        try:
            token = self.config.token
            app = self.perimeter.application(
                *([make_middleware(token)] if token else []),
                client_max_size=self.config.max_upload_bytes + (1 << 20))
            app.router.add_get("/health", self._health)
            app.router.add_get("/livez", self._livez)
            app.router.add_get("/metrics", self._metrics)
            websocket.add_routes(app, self)
            openai_api.add_routes(app, self)
            openai_realtime.add_routes(app, self)
            web.add_routes(app, self)
            monitor.add_routes(app, self)
            self.speech.add_routes(app)
            self.rtstt = RtsttHub.add_routes(app, self)
            self._runner, self._port = await self.perimeter.serve(app, self.config.host,
                                                                  self.config.port)
            if self.config.rtstt_ports is not None:
                await self.rtstt.listen(self.config.host, *self.config.rtstt_ports,
                                        perimeter=self.perimeter)
        except BaseException:
            await self.close()
            raise
        logger.info("harken server listening on %s", self.url)

    async def close(self, drain_timeout: float | None = None) -> None:
        """Finish in-flight finals (bounded), close every connection, stop the engine.

        Idempotent.

        Args:
            drain_timeout: seconds to wait for finals still being transcribed; defaults to
                ``config.drain_timeout_s``.
        """
        if self._closed:
            return
        self._closed = True
        self.draining = True
        timeout = self.config.drain_timeout_s if drain_timeout is None else drain_timeout
        await self.connections.shutdown(timeout)
        if self.rtstt is not None:
            await self.rtstt.close(timeout)
        if self._runner is not None:
            with contextlib.suppress(Exception):
                await self._runner.cleanup()
            self._runner = None
        await self.speech.close()
        await self.engine.close()

    def session_name(self, peer: str) -> str:
        """A unique, readable name for a new session."""
        return f"s{next(self._ids)}-{peer}"

    async def wait_failed(self) -> BaseException:
        """Return (the engine's last error) once the engine failed for good: its restarts
        with back-off all failed. The server then only refuses work: close it (``harken
        serve`` does, and exits non-zero so a supervisor restarts it).
        """
        return await self.engine.wait_gave_up()

    # -------------------------------------------------------------- health and metrics

    def health(self, details: bool = True) -> dict[str, Any]:
        """What ``GET /health`` answers: only the status without ``details`` (what a client
        without the token sees); no paths or process ids either way.
        """
        host = self.engine
        ok = host.fatal is None and not self._closed
        status = "ok" if ok else "draining" if host.fatal is None else "failed"
        if not details:
            return {"status": status}
        info = host.ready_info
        engine: dict[str, Any] = {k: info[k] for k in ("engine", "device", "compute_type")
                                  if k in info}
        if "model" in info:  # a name, not where it lives
            engine["model"] = os.path.basename(str(info["model"]).rstrip("/\\"))
        return {
            "status": status,
            "error": None if host.fatal is None else str(host.fatal),
            "sessions": host.sessions,
            "max_sessions": host.max_sessions,
            "connections": len(self.connections),
            "queue_depth": host.queued,
            "in_engine": host.in_engine,
            "engine": engine,
            "engine_restarts": host.restarts,
            "engines": host.engines,
            "tasks": len(asyncio.all_tasks()),
            "uptime_s": round(time.monotonic() - self._started_at, 3),
        }

    async def _health(self, request: Any) -> Any:
        token = self.config.token
        body = self.health(details=token is None or has_token(request, token))
        return import_aiohttp().json_response(body, status=200 if body["status"] == "ok" else 503)

    async def _livez(self, request: Any) -> Any:
        # Liveness: the loop answers. A draining or failed server is alive (a restart would
        # cut its sessions short); harken serve exits by itself when it is done.
        return import_aiohttp().json_response({"status": "alive"})

    def metrics(self) -> list[Metric]:
        """The metric families ``GET /metrics`` renders."""
        host, stats = self.engine, self.stats
        engines = host.engines
        return [
            Metric("harken_sessions", "gauge", "Sessions open now (streams and files).",
                   {"": host.sessions}),
            Metric("harken_max_sessions", "gauge", "Sessions allowed at once.",
                   {"": host.max_sessions}),
            Metric("harken_websocket_connections", "gauge",
                   "WebSocket connections open now (all protocols).",
                   {"": len(self.connections)}),
            Metric("harken_websocket_connections_total", "counter",
                   "WebSocket connections accepted since start.",
                   {"": stats.connections_total}),
            Metric("harken_rejected_total", "counter",
                   "Sessions and finals refused with 'server busy'.",
                   {"": host.rejected}),
            Metric("harken_sessions_closed_by_error_total", "counter",
                   "Sessions closed because of an error, by error code.",
                   {f'code="{k}"': v for k, v in sorted(stats.closed_by_error.items())}),
            Metric("harken_engine_queue_depth", "gauge",
                   "Requests waiting in the server for the engine.", {"": host.queued}),
            Metric("harken_engine_inflight", "gauge",
                   "Requests in the engine processes now.", {"": host.in_engine}),
            Metric("harken_engine_requests_total", "counter", "Requests answered, by kind.",
                   {f'kind="{k}"': v for k, v in host.answered.items()}),
            Metric("harken_engine_fast_finals_total", "counter",
                   "Finals sent with the engine's fast pass because others were waiting.",
                   {"": host.fast_finals}),
            Metric("harken_engine_failures_total", "counter",
                   "Requests the engine could not answer.", {"": host.failed}),
            Metric("harken_engine_restarts_total", "counter",
                   "Engine process restarts after a crash or hang.", {"": host.restarts}),
            Metric("harken_engine_latency_seconds", "histogram",
                   "Seconds from a session's request to the engine's answer (queue wait "
                   "included), by kind.",
                   {f'kind="{k}"': h for k, h in host.latency.items()}),
            Metric("harken_engine_compute_seconds_total", "counter",
                   "Engine time spent on answered requests.", {"": host.compute_seconds}),
            Metric("harken_engine_audio_seconds_total", "counter",
                   "Seconds of audio in answered requests.", {"": host.audio_seconds}),
            Metric("harken_engines", "gauge", "Engine processes, by state (ok, restarting, "
                   "failed).", {f'state="{k}"': sum(1 for e in engines if e["state"] == k)
                                for k in ("ok", "restarting", "failed")}),
            Metric("harken_engine_process_inflight", "gauge",
                   "Requests in each engine process now.",
                   {f'engine="{e["engine"]}"': e["in_engine"] for e in engines}),
            Metric("harken_engine_process_requests_total", "counter",
                   "Requests each engine process answered.",
                   {f'engine="{e["engine"]}"': e["answered"] for e in engines}),
            Metric("harken_engine_process_restarts_total", "counter",
                   "Restarts of each engine process.",
                   {f'engine="{e["engine"]}"': e["restarts"] for e in engines}),
            Metric("harken_engine_cancelled_total", "counter",
                   "Requests a session withdrew (stale early finals), by where they were: "
                   "waiting in the server or in an engine.",
                   {f'where="{k}"': v for k, v in host.cancelled.items()}),
            Metric("harken_engine_partials_replaced_total", "counter",
                   "Waiting partials replaced by their session's newer one.",
                   {"": host.partials_replaced}),
            Metric("harken_engine_moved_total", "counter",
                   "Requests moved from a crashed engine process to another.",
                   {"": host.moved}),
            Metric("harken_engine_rtf", "gauge",
                   "Real-time factor: engine seconds per second of audio (lower is faster).",
                   {"": round(host.rtf, 4)}),
            Metric("harken_finals_sent_total", "counter", "Final messages sent to clients.",
                   {"": stats.finals_sent}),
            Metric("harken_partials_sent_total", "counter",
                   "Partial messages sent to clients.", {"": stats.partials_sent}),
            Metric("harken_http_requests_total", "counter",
                   "OpenAI-compatible HTTP requests, by status.",
                   {f'status="{k}"': v for k, v in sorted(stats.http_requests.items())}),
            Metric("harken_http_request_seconds", "histogram",
                   "Seconds to answer an OpenAI-compatible transcription request.",
                   {"": stats.http_latency}),
        ]

    async def _metrics(self, request: Any) -> Any:
        return import_aiohttp().Response(text=render(self.metrics()),
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})


class BackgroundServer:
    """A :class:`Server` on its own thread ("harken-server"), for synchronous programs.

    ``start()`` blocks until the server listens (or raises what its start raised);
    ``close()`` shuts it down gracefully and joins the thread. Idempotent.

    Args:
        config: the server's settings.
        engine_factory: for tests: builds the engine runner instead of an EngineProcess.
    """

    def __init__(self, config: ServerConfig | None = None, *,
                 engine_factory: EngineFactory | None = None) -> None:
        self.server = Server(config, engine_factory=engine_factory)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        return self.server.url

    @property
    def ws_url(self) -> str:
        """``ws://host:port/v1/stream``: harken's WebSocket protocol."""
        return self.server.url.replace("http://", "ws://", 1) + "/v1/stream"

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the thread and wait until the server listens.

        Raises:
            LifecycleError: started twice.
            BackendNotInstalled, WorkerError, OSError: what :meth:`Server.start` raised.
        """
        if self._thread is not None:
            raise LifecycleError("BackgroundServer.start() called twice")
        self._thread = threading.Thread(target=self._run, name="harken-server", daemon=True)
        self._thread.start()
        self._ready.wait(self.server.config.start_timeout_s + 10.0)
        if self._error is not None:
            self._thread.join(5.0)
            raise self._error

    def call(self, fn: Any, timeout: float = 10.0) -> Any:
        """Run ``fn()`` on the server's loop and return its result (for stats in tests)."""
        loop = self._loop
        if loop is None:
            raise LifecycleError("the server is not running")

        async def wrapped() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), loop).result(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.server.close()

    def close(self, timeout: float | None = None) -> None:
        """Shut the server down (finishing in-flight finals) and join the thread."""
        thread = self._thread
        if thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        limit = timeout if timeout is not None else self.server.config.drain_timeout_s + 10.0
        join_thread(thread, limit, logger, "the server's shutdown is stuck")
