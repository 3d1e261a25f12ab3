"""The engine pool: EngineHost with several engines (``harken serve --engines N``).

The scheduler's order is checked with fake engine runners answered by hand; losing an engine
is checked with real engine processes (the scripted engine) and SIGKILL, and through a real
server's /health and /metrics.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from test_server_host import FakeEngine, Recorder, make_host, req, settle

from harken.config import EngineConfig
from harken.engine.base import EngineOutput, TranscribeRequest
from harken.errors import ConfigError, WorkerCrashed
from harken.server.engine_host import EngineHost
from harken.server.engine_pool import pool_engine, pool_size


def test_pool_size_defaults_from_the_cores():
    assert pool_size(cores=1) == (1, 1)
    assert pool_size(cores=2) == (2, 1)  # one decode leaves the second core idle
    assert pool_size(cores=4) == (2, 2)
    assert pool_size(cores=8) == (2, 4)
    assert pool_size(cores=16) == (4, 4)
    assert pool_size(2, cores=2) == (2, 1)  # never more threads than cores in all
    assert pool_size(3, 5, cores=2) == (3, 5)  # what the user asks for
    assert pool_size(cores=16, device="cuda") == (1, 16)
    with pytest.raises(ConfigError):
        pool_size(-1)


def test_pool_engine_writes_the_threads_per_engine_unless_the_engine_sets_them():
    engine, engines = pool_engine(EngineConfig(model="base.en"), 3, 2)
    assert (engines, engine.cpu_threads, engine.model) == (3, 2, "base.en")
    engine, engines = pool_engine(EngineConfig(cpu_threads=5), 2, 1)
    assert (engines, engine.cpu_threads) == (2, 5)  # the engine's own setting wins
    engine, _ = pool_engine(EngineConfig(), 0, 0)
    assert engine.cpu_threads == pool_size()[1]
    with pytest.raises(ConfigError):
        pool_engine(EngineConfig(), -1)


class Logged(Recorder):
    """A Recorder that also writes (name, request id, kind) to a log shared by sessions."""

    def __init__(self, name: str, log: list[tuple[str, int, str]]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def on_result(self, request: TranscribeRequest, output: EngineOutput, *_: Any) -> None:
        super().on_result(request, output)
        self.log.append((self.name, request.request_id, request.kind))


def test_two_engines_take_finals_first_round_robin_and_partials_only_when_idle():
    async def main() -> None:
        host, (e0, e1) = await make_host(engines=2, max_in_engine=1, fast_finals_at=None)
        log: list[tuple[str, int, str]] = []
        a, b, c = Logged("a", log), Logged("b", log), Logged("c", log)
        sa, sb, sc = (host.open_session(r.name, r.on_result, r.on_failed, r.on_error)
                      for r in (a, b, c))
        for i in range(1, 5):
            host.submit(sa, req(i))  # a chatty session: four finals at once
        host.submit(sb, req(1, "partial"))  # waits: no engine is idle
        host.submit(sc, req(1))
        host.submit(sb, req(2))
        # a's first two finals went out at once, one to each idle engine.
        assert [(r.request_id, r.kind) for r in e0.submitted + e1.submitted] == [
            (1, "final"), (2, "final")]
        while e0.submitted or e1.submitted:  # answer the oldest first, engine by engine
            engine = min((e for e in (e0, e1) if e.submitted),
                         key=lambda e: e.submitted[0].request_id)
            engine.answer(engine.submitted.pop(0))
            await settle()
        # Finals round-robin over the sessions (turn order b, c, a once a was served):
        # b and c go before a's third and fourth; b's partial goes last, to an idle engine.
        assert log == [("a", 1, "final"), ("a", 2, "final"), ("b", 2, "final"),
                       ("c", 1, "final"), ("a", 3, "final"), ("a", 4, "final"),
                       ("b", 1, "partial")]
        assert host.queued == 0 and host.in_engine == 0
        assert sum(e["answered"] for e in host.engines) == 7
        assert all(e["answered"] >= 3 for e in host.engines)  # both engines worked
        await host.close()

    asyncio.run(main())


def test_a_session_sticks_to_its_engine_when_that_one_is_free():
    async def main() -> None:
        host, (e0, e1) = await make_host(engines=2, max_in_engine=2, fast_finals_at=None)
        a, b = Recorder(), Recorder()
        sa = host.open_session("a", a.on_result, a.on_failed, a.on_error)
        sb = host.open_session("b", b.on_result, b.on_failed, b.on_error)
        host.submit(sa, req(1))  # engine 0 (least busy, lowest index)
        host.submit(sb, req(1))  # engine 1 (least busy)
        e0.answer(e0.submitted.pop())
        e1.answer(e1.submitted.pop())
        await settle()
        host.submit(sb, req(2))  # both idle: b goes back to engine 1, not the lowest index
        host.submit(sa, req(2))
        assert [r.request_id for r in e1.submitted] == [3]  # global ids: b's went first
        assert [r.request_id for r in e0.submitted] == [4]
        await host.close()

    asyncio.run(main())


def test_a_crashed_engine_hands_its_finals_to_the_other_and_rests():
    async def main() -> None:
        host, (e0, e1) = await make_host(engines=2, max_in_engine=2, fast_finals_at=None,
                                         restart_backoff_s=0.2)
        r = Recorder()
        s = host.open_session("a", r.on_result, r.on_failed, r.on_error)
        for i in range(1, 5):
            host.submit(s, req(i))
        assert len(e0.submitted) == 2 and len(e1.submitted) == 2
        e0.on_error(WorkerCrashed("killed"), False)  # its child is being restarted
        await settle()
        assert sorted(e0.cancelled) == sorted(q.request_id for q in e0.submitted)
        assert host.engines[0]["state"] == "restarting" and host.moved == 2
        assert r.errors and r.errors[0][1] is False  # told, and not fatal: another runs
        for _ in range(3):  # engine 1 answers everything; engine 0 gets nothing meanwhile
            while e1.submitted:
                e1.answer(e1.submitted.pop(0))
                await settle()
        assert sorted(rid for rid, _ in r.results) == [1, 2, 3, 4]  # none lost, none twice
        assert r.failed == [] and host.in_engine == 0 and host.fatal is None
        await asyncio.sleep(0.3)
        assert host.engines[0]["state"] == "ok"
        host.submit(s, req(5))  # both idle: the session's last engine (1) takes it
        host.submit(s, req(6))  # engine 0 is less busy now: back in the rotation
        assert [q.request_id for q in e1.submitted] == [7]  # 5 and 6 were the moved two
        assert [q.request_id for q in e0.submitted][2:] == [8]
        await host.close()

    asyncio.run(main())


def test_finals_failed_by_a_dying_engine_go_to_the_other_not_back_to_it():
    async def main() -> None:
        host, (e0, e1) = await make_host(engines=2, max_in_engine=2, fast_finals_at=None)
        r = Recorder()
        s = host.open_session("a", r.on_result, r.on_failed, r.on_error)
        for i in range(1, 5):
            host.submit(s, req(i))
        held = list(e0.submitted)
        e0.submitted.clear()
        dead = WorkerCrashed("the engine process cannot be restarted")
        for q in held:  # what EngineProcess does when it gives up: fail each, then report
            e0.on_failed(q, dead)
        e0.on_error(dead, True)
        await settle()
        assert e0.submitted == []  # nothing was handed back to the dying process
        while e1.submitted:
            e1.answer(e1.submitted.pop(0))
            await settle()
        assert sorted(rid for rid, _ in r.results) == [1, 2, 3, 4] and r.failed == []
        assert [fatal for _, fatal in r.errors] == [False] and host.moved == 2
        await host.close()

    asyncio.run(main())


def test_one_engine_failing_for_good_leaves_the_pool_up_until_all_have():
    async def main() -> None:
        engines: list[FakeEngine] = []
        loads = {"fail": False}

        def factory(*callbacks: Any) -> FakeEngine:
            engines.append(FakeEngine(*callbacks))
            if loads["fail"]:
                engines[-1].start = _broken_start  # type: ignore[method-assign]
            return engines[-1]

        host = EngineHost(EngineConfig(engine="scripted"), engines=2, engine_factory=factory,
                          restart_backoff_s=0.01, max_restarts=1)
        await host.start()
        r = Recorder()
        s = host.open_session("a", r.on_result, r.on_failed, r.on_error)
        loads["fail"] = True  # from now on a fresh engine cannot load
        engines[0].on_error(WorkerCrashed("gave up"), True)
        await settle()
        assert [fatal for _, fatal in r.errors] == [False]  # the pool still runs
        assert host.fatal is None
        host.submit(s, req(1))
        assert [q.request_id for q in engines[1].submitted] == [1]  # the live one took it
        engines[1].on_error(WorkerCrashed("gave up too"), True)
        await settle()
        assert [fatal for _, fatal in r.errors] == [False, True]  # now none runs
        assert host.fatal is not None
        error = await asyncio.wait_for(host.wait_gave_up(), 5.0)
        assert "cannot load" in str(error)
        assert [e["state"] for e in host.engines] == ["failed", "failed"]
        await host.close()

    asyncio.run(main())


def _broken_start() -> None:
    raise WorkerCrashed("cannot load")


def _child_pid(host: EngineHost, index: int) -> int:
    engine = host._slots[index].engine  # noqa: SLF001 - the test kills this process
    pid = getattr(engine, "pid", None)
    assert isinstance(pid, int)
    return pid


def test_sigkill_of_one_real_engine_process_loses_no_final():
    async def main() -> None:
        host = EngineHost(EngineConfig(engine="scripted", options={"delay_s": 0.15}),
                          engines=2, max_in_engine=2, restart_backoff_s=0.5)
        await host.start()
        recorders = [Recorder() for _ in range(4)]
        sessions = [host.open_session(str(i), r.on_result, r.on_failed, r.on_error)
                    for i, r in enumerate(recorders)]
        for session in sessions:
            for i in range(1, 4):
                host.submit(session, req(i))
        await asyncio.sleep(0.05)  # both engines hold finals now
        assert all(e["in_engine"] for e in host.engines)
        os.kill(_child_pid(host, 0), signal.SIGKILL)
        for _ in range(300):
            if all(len(r.results) == 3 for r in recorders):
                break
            await asyncio.sleep(0.02)
        for r in recorders:  # every final answered exactly once, in the session's ids
            assert sorted(rid for rid, _ in r.results) == [1, 2, 3], r.results
            assert r.failed == []
        assert host.moved >= 1 and host.restarts >= 1 and host.fatal is None
        assert sum(e["answered"] for e in host.engines) == 12
        await host.close()

    asyncio.run(main())


def test_health_and_metrics_report_each_engine():
    from server_helpers import config

    from harken.server.app import Server

    async def main() -> None:
        import aiohttp

        async with Server(config(engines=2)) as server:
            async with aiohttp.ClientSession() as http:
                async with http.get(server.url + "/health") as resp:
                    health = await resp.json()
                async with http.get(server.url + "/metrics") as resp:
                    text = await resp.text()
        assert [(e["engine"], e["state"]) for e in health["engines"]] == [(0, "ok"), (1, "ok")]
        assert 'harken_engines{state="ok"} 2' in text
        assert 'harken_engine_process_inflight{engine="1"} 0' in text

    asyncio.run(main())
