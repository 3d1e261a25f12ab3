"""A protocol module driven against a small fake ServerContext: the point of the seam.

harken's WebSocket protocol (:mod:`harken.server.websocket`) runs here with no aiohttp server
and no :class:`~harken.server.app.Server`: a fake context (six members), a fake WebSocket
that replays client frames and records what is sent, a scripted VAD and an
:class:`~harken.server.engine_host.EngineHost` whose engine answers by hand. So the test sees
exactly which requests reach the engine and which messages, counters and registry entries
the protocol produces.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from harken.config import EngineConfig, RealtimeConfig, VadConfig
from harken.engine.base import EngineOutput, TranscribeRequest
from harken.server.config import ServerConfig
from harken.server.connection_base import CLOSE_TRY_LATER, serve
from harken.server.context import ServerContext, ServerStats
from harken.server.engine_host import EngineHost
from harken.server.registry import ConnectionRegistry
from harken.server.websocket import Connection
from harken.testing import ScriptedVad, silence, tone

aiohttp = pytest.importorskip("aiohttp")


class HandEngine:
    """An engine runner whose answers the test gives by hand."""

    def __init__(self, on_result: Any, on_failed: Any, on_error: Any) -> None:
        self.on_result = on_result
        self.submitted: list[TranscribeRequest] = []
        self.restarts = 0
        self.ready_info: dict[str, Any] = {"engine": "by hand"}

    def start(self) -> None:
        pass

    def submit(self, request: TranscribeRequest) -> None:
        self.submitted.append(request)

    def cancel(self, request_id: int) -> None:
        pass

    def close(self, timeout: float = 2.0) -> None:
        pass


class Vads:
    """Each session's detector: speech from 0.3 s to 1.3 s of its stream."""

    smart_turns = False

    def create(self) -> ScriptedVad:
        return ScriptedVad([(0.3, 1.3)])

    def turn(self, config: Any) -> None:
        return None


@dataclass
class FakeContext:
    """The six members a protocol module may use, and nothing else of a server."""

    config: ServerConfig
    engine: EngineHost
    vads: Vads = field(default_factory=Vads)
    stats: ServerStats = field(default_factory=ServerStats)
    connections: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def session_name(self, peer: str) -> str:
        return f"t{next(self._ids)}-{peer}"


class FakeWs:
    """The part of aiohttp's WebSocketResponse the connection uses."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.close_code: int | None = None

    def text(self, message: dict[str, Any]) -> None:
        self.incoming.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.TEXT,
                                                   json.dumps(message), None))

    def binary(self, data: bytes) -> None:
        self.incoming.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.BINARY, data, None))

    async def receive(self, timeout: float | None = None) -> Any:
        return await asyncio.wait_for(self.incoming.get(), timeout)

    async def send_str(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int) -> None:
        self.close_code = code
        self.incoming.put_nowait(aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None))

    def exception(self) -> None:
        return None

    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]


class FakeRequest:
    remote = "10.0.0.7"
    transport = None


async def make_context(**config: Any) -> tuple[FakeContext, list[HandEngine]]:
    engines: list[HandEngine] = []

    def factory(on_result: Any, on_failed: Any, on_error: Any) -> HandEngine:
        engines.append(HandEngine(on_result, on_failed, on_error))
        return engines[-1]

    cfg = ServerConfig(engine=EngineConfig(engine="scripted"), vad=VadConfig(backend="energy"),
                       realtime=RealtimeConfig(partials=False, early_final=False), **config)
    host = EngineHost(cfg.engine, max_sessions=cfg.max_sessions, engine_factory=factory)
    await host.start()
    return FakeContext(cfg, host), engines


async def until(check: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_a_stream_through_the_protocol_module_against_a_fake_context() -> None:
    async def main() -> None:
        ctx, engines = await make_context()
        typed: ServerContext = ctx  # the fake satisfies the protocol (mypy checks this file)
        ws = FakeWs()
        conn = Connection(typed, ws, FakeRequest(), ctx.session_name("10.0.0.7"))
        task = asyncio.create_task(serve(conn, ctx.connections))
        await until(lambda: len(ctx.connections) == 1)
        assert ctx.engine.sessions == 0  # connected: a session only from its "start"

        ws.text({"type": "start", "sample_rate": 16000, "encoding": "float32"})
        await until(lambda: ctx.engine.sessions == 1)
        audio = np.concatenate([silence(0.3), tone(1.0), silence(1.0)]).astype(np.float32)
        ws.binary(audio.tobytes())
        await until(lambda: any(r.kind == "final" for r in engines[0].submitted))
        final = next(r for r in engines[0].submitted if r.kind == "final")
        assert abs(len(final.audio) / 16000 - 1.0) < 0.6  # the burst, not the whole stream
        engines[0].on_result(final, EngineOutput("hello there"), 0.05, 1)
        ws.text({"type": "stop"})
        await until(lambda: "stopped" in ws.types())

        assert ws.types() == ["ready", "speech_started", "speech_ended", "final", "stopped"]
        assert ws.sent[0]["session"] == "t1-10.0.0.7"
        assert ws.sent[3]["text"] == "hello there"
        assert ctx.stats.finals_sent == 1 and ctx.stats.partials_sent == 0

        await ws.close(1000)
        await asyncio.wait_for(task, 5.0)
        assert len(ctx.connections) == 0 and ctx.engine.sessions == 0
        await ctx.engine.close()

    asyncio.run(main())


def test_a_full_engine_host_is_server_busy_through_the_context() -> None:
    async def main() -> None:
        ctx, _ = await make_context(max_sessions=1)
        first, second = FakeWs(), FakeWs()
        one = asyncio.create_task(serve(Connection(ctx, first, FakeRequest(), "a"),
                                        ctx.connections))
        first.text({"type": "start", "sample_rate": 16000})
        await until(lambda: ctx.engine.sessions == 1)
        second.text({"type": "start", "sample_rate": 16000})
        await serve(Connection(ctx, second, FakeRequest(), "b"), ctx.connections)

        assert second.types() == ["error"] and second.sent[0]["code"] == "server_busy"
        assert second.close_code == CLOSE_TRY_LATER
        assert ctx.stats.rejected_total == 1
        assert ctx.stats.closed_by_error == {"server_busy": 1}
        assert len(ctx.connections) == 1  # the refused one left the registry

        await ctx.connections.shutdown(1.0)  # the server's close, through the registry
        await asyncio.wait_for(one, 5.0)
        assert first.types() == ["ready", "stopped", "error"], first.types()
        assert first.sent[-1]["code"] == "shutting_down"
        await ctx.engine.close()

    asyncio.run(main())
