"""RtsttHub: RealtimeSTT's endpoints on one harken server, and its control commands.

The hub adds ``/rtstt/control`` and ``/rtstt/data`` to the server's application, opens the
extra ports of ``ServerConfig.rtstt_ports`` (:meth:`RtsttHub.listen`) and pairs each client
address's control socket with its data sockets (:mod:`harken.server.rtstt` describes the
protocol): a control command changes that client's settings or acts on its data sockets.

Thread: everything runs on the server's asyncio event loop.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from typing import Any

import numpy as np

from ...audio.convert import float32_to_pcm16
from ...errors import HarkenError
from ..auth import make_middleware
from ..connection_base import CLOSE_GOING_AWAY, import_aiohttp, serve
from ..context import ServerContext
from ..http_guard import Perimeter
from ..languages import language_problem
from .protocol import (
    CONTROL_PATH,
    DATA_PATH,
    END_METHODS,
    FINISH_METHODS,
    KNOWN,
    NO_OP_METHODS,
    READABLE,
    ClientSettings,
    error_reply,
    parse_command,
    set_parameter,
)
from .socket import ControlSocket, DataSocket

_MAX_SESSION_ID = 128
"""The longest ``?session=`` id accepted, in characters (a longer one counts as none)."""

__all__ = ["RtsttHub", "add_routes"]

logger = logging.getLogger(__name__)


class _Client:
    """The control and data sockets of one client: one address and one session id (or
    none).
    """

    def __init__(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.controls = 0
        self.data: set[DataSocket] = set()


class RtsttHub:
    """RealtimeSTT's two endpoints on one harken :class:`~harken.server.app.Server`.

    Built by :func:`add_routes` when the server starts; :meth:`listen` opens the extra ports
    and :meth:`close` closes them. Its sockets join the server's ``connections``, which
    the server shuts down before it closes the hub.

    Args:
        server: the server's context (its engine, VAD factory, config and stats).
    """

    def __init__(self, server: ServerContext) -> None:
        self.server = server
        self._clients: dict[tuple[str, str | None], _Client] = {}
        self._runners: list[Any] = []
        self._closed = False
        self.ports: tuple[int, int] | None = None
        """The (control, data) ports serving the protocol at "/", once :meth:`listen` ran."""

    @classmethod
    def add_routes(cls, app: Any, server: ServerContext) -> RtsttHub:
        """Add the control and data sockets to the server's aiohttp application.

        Returns:
            The hub serving them (its :meth:`listen` opens the extra ports).
        """
        hub = cls(server)
        app.router.add_get(CONTROL_PATH, hub.control_handler)
        app.router.add_get(DATA_PATH, hub.data_handler)
        return hub

    @property
    def connections(self) -> int:
        """RealtimeSTT sockets (control and data) connected now."""
        return sum(len(c.data) + c.controls for c in self._clients.values())

    def _client(self, request: Any) -> tuple[tuple[str, str | None], _Client]:
        """The client of a socket: its address and the ``?session=`` id of its URL."""
        sid = request.query.get("session")
        if not isinstance(sid, str) or not 0 < len(sid) <= _MAX_SESSION_ID:
            sid = None
        host = (str(request.remote or "?"), sid)
        client = self._clients.get(host)
        if client is None:
            config = self.server.config
            wake = config.rtstt_wake
            client = self._clients[host] = _Client(ClientSettings(
                language=config.engine.language,
                post_speech_silence_duration=config.vad.post_speech_silence_ms / 1000,
                wake_word_activation_delay=wake.activation_delay_s,
                use_wake_words=wake.enabled, wake_words_available=wake.enabled))
        return host, client

    def _release(self, host: tuple[str, str | None], client: _Client) -> None:
        if not client.controls and not client.data:
            self._clients.pop(host, None)

    async def listen(self, host: str, control_port: int, data_port: int, *,
                     perimeter: Perimeter) -> None:
        """Serve the control and data sockets at "/" on two more ports.

        Args:
            host: the interface to bind.
            control_port: the control socket's port (0: any).
            data_port: the data socket's port (0: any).
            perimeter: the server's (its connection cap and checks cover these ports too).

        Raises:
            OSError: a port is in use.
        """
        token = self.server.config.token
        # The server's own token check, with no open path: "/" here is a protocol socket.
        middlewares = [make_middleware(token, open_paths=frozenset())] if token else []
        ports: list[int] = []
        for port, handler in ((control_port, self.control_handler),
                              (data_port, self.data_handler)):
            app = perimeter.application(*middlewares)
            app.router.add_get("/", handler)
            runner, bound = await perimeter.serve(app, host, port)
            self._runners.append(runner)
            ports.append(bound)
        self.ports = (ports[0], ports[1])
        logger.info("RealtimeSTT protocol on ports %d (control) and %d (data)", *self.ports)

    async def close(self, timeout: float) -> None:
        """Close the extra ports (the server has shut the sockets down already).

        Idempotent.

        Args:
            timeout: unused: the server's registry already waited for the data sockets'
                finals.
        """
        if self._closed:
            return
        self._closed = True
        runners, self._runners = self._runners, []
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()

    # ------------------------------------------------------------ data socket

    async def data_handler(self, request: Any) -> Any:
        """Aiohttp handler of the data socket."""
        web = import_aiohttp()
        cfg = self.server.config
        ws = web.WebSocketResponse(max_msg_size=cfg.max_audio_frame_bytes * 2 + 1024,
                                   timeout=2.0, heartbeat=None)
        await ws.prepare(request)
        self.server.stats.connections_total += 1
        host, client = self._client(request)
        sock = DataSocket(self.server, client.settings, ws, request,
                           self.server.session_name(f"rtstt-{host[0]}"))
        client.data.add(sock)
        try:
            await serve(sock, self.server.connections)
        finally:
            client.data.discard(sock)
            self._release(host, client)
        return ws

    # ------------------------------------------------------------ control socket

    async def control_handler(self, request: Any) -> Any:
        """Aiohttp handler of the control socket."""
        web = import_aiohttp()
        limit = self.server.config.max_control_bytes
        ws = web.WebSocketResponse(max_msg_size=limit * 4, timeout=2.0, heartbeat=None)
        await ws.prepare(request)
        registry = self.server.connections
        if registry.closing:
            await ws.close(code=CLOSE_GOING_AWAY)
            return ws
        host, client = self._client(request)
        client.controls += 1
        socket = ControlSocket(ws)
        registry.add(socket, host[0])
        try:
            async for msg in ws:
                if msg.type == web.WSMsgType.TEXT:
                    if len(msg.data) > limit:
                        reply = error_reply(f"Command longer than {limit} bytes")
                    else:
                        reply = self.command(client, msg.data)
                elif msg.type == web.WSMsgType.BINARY:
                    reply = error_reply("The control socket takes JSON text commands")
                else:
                    break
                await ws.send_str(json.dumps(reply))
        except (ConnectionError, RuntimeError) as exc:
            logger.debug("RealtimeSTT control socket from %s failed: %s", host[0], exc)
        finally:
            registry.discard(socket)
            client.controls -= 1
            self._release(host, client)
        return ws

    def command(self, client: _Client, text: str) -> dict[str, Any]:
        """Run one control command and return RealtimeSTT's answer (never raises)."""
        data = parse_command(text)
        if data is None:
            return error_reply("Invalid JSON command")
        command = data.get("command")
        if len(client.data) > 1:
            return error_reply(f"{len(client.data)} RealtimeSTT data sockets share this "
                               "address and no session id; add the same ?session=ID to the "
                               "control and data URLs to say which one this control socket "
                               "drives")
        try:
            if command == "set_parameter":
                problem = language_problem(self.server.engine.ready_info,
                                           (data.get("value") or None,), "language") \
                    if data.get("parameter") == "language" else None
                if problem:
                    return error_reply(problem)
                return set_parameter(client.settings, data.get("parameter"), data.get("value"))
            if command == "get_parameter":
                return self._get(client, data.get("parameter"), data.get("request_id"))
            if command == "call_method":
                return self._call(client, data.get("method"))
        except (HarkenError, TypeError, ValueError) as exc:
            return error_reply(f"{command} failed: {exc}")
        return error_reply(f"Unknown command {command}")

    def _get(self, client: _Client, name: object, request_id: object) -> dict[str, Any]:
        if name not in KNOWN:
            return error_reply(f"Parameter {name} is not allowed (get_parameter)")
        if name not in READABLE:
            return error_reply(f"Parameter {name} is not supported by the harken server "
                               "(get_parameter)")
        settings = client.settings
        data = max(client.data, key=lambda d: d.listen_start, default=None)
        value: Any
        if name == "language":
            value = settings.language or ""
        elif name == "use_wake_words":
            value = settings.use_wake_words
        elif name == "silero_sensitivity":
            value = round(1.0 - self.server.config.vad.silero_threshold, 6)
        elif name == "is_recording":
            value = any(d.recording for d in client.data)
        elif name == "listen_start":
            value = data.listen_start if data is not None else 0.0
        elif name == "recording_stop_time":
            value = max((d.recording_stop_time for d in client.data), default=0.0)
        elif name == "last_transcription_bytes_b64":
            audio = data.last_audio if data is not None else np.zeros(0, dtype=np.float32)
            value = base64.b64encode(float32_to_pcm16(audio)).decode("ascii")
        else:
            value = getattr(settings, str(name))
        reply: dict[str, Any] = {"status": "success", "parameter": name, "value": value}
        if request_id is not None:
            reply["request_id"] = request_id
        return reply

    def _call(self, client: _Client, method: object) -> dict[str, Any]:
        if method in FINISH_METHODS:
            for sock in list(client.data):
                sock.finish_utterance()
        elif method in END_METHODS:
            for sock in list(client.data):
                sock.end_session(self.server.config.drain_timeout_s)
        elif method == "abort":
            for sock in list(client.data):
                sock.abort_utterance()
        elif method == "wakeup":
            for sock in list(client.data):
                sock.wake_up()
        elif method not in NO_OP_METHODS:
            return error_reply(f"Method {method} is not allowed")
        return {"status": "success", "message": f"Method {method} called"}


add_routes = RtsttHub.add_routes
"""``add_routes(app, server)``: the protocol-module entry point (see :mod:`..openai_api`)."""
