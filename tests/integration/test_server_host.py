"""EngineHost: global ids, fair round-robin, partial coalescing, admission, withdrawal.

Most tests drive the host with a fake engine runner (answers are given by hand, so the order
of submissions is exact); one runs the real engine process with the scripted engine.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from harken.config import EngineConfig
from harken.engine.base import EngineOutput, TranscribeRequest
from harken.errors import EngineError, WorkerCrashed
from harken.server.engine_host import EngineHost, EngineUnavailable, ServerBusy


class FakeEngine:
    def __init__(self, on_result: Any, on_failed: Any, on_error: Any) -> None:
        self.on_result, self.on_failed, self.on_error = on_result, on_failed, on_error
        self.submitted: list[TranscribeRequest] = []
        self.cancelled: list[int] = []
        self.restarts = 0
        self.ready_info: dict[str, Any] = {"engine": "fake"}
        self.closed = False

    def start(self) -> None:
        pass

    def submit(self, request: TranscribeRequest) -> None:
        self.submitted.append(request)

    def cancel(self, request_id: int) -> None:
        self.cancelled.append(request_id)

    def close(self, timeout: float = 2.0) -> None:
        self.closed = True

    def answer(self, request: TranscribeRequest, text: str = "ok") -> None:
        self.on_result(request, EngineOutput(text), 0.1, 1)


def req(rid: int, kind: str = "final", utterance: int = 1) -> TranscribeRequest:
    return TranscribeRequest(rid, utterance, kind, np.zeros(1600, np.float32), 0, 1600)  # type: ignore[arg-type]


class Recorder:
    def __init__(self) -> None:
        self.results: list[tuple[int, str]] = []
        self.failed: list[int] = []
        self.errors: list[tuple[BaseException, bool]] = []

    def on_result(self, request: TranscribeRequest, output: EngineOutput, *_: Any) -> None:
        self.results.append((request.request_id, output.text))

    def on_failed(self, request: TranscribeRequest, exc: BaseException) -> None:
        self.failed.append(request.request_id)

    def on_error(self, exc: BaseException, fatal: bool) -> None:
        self.errors.append((exc, fatal))


async def make_host(**kw: Any) -> tuple[EngineHost, list[FakeEngine]]:
    engines: list[FakeEngine] = []

    def factory(*callbacks: Any) -> FakeEngine:
        engines.append(FakeEngine(*callbacks))
        return engines[-1]

    host = EngineHost(EngineConfig(engine="scripted"), engine_factory=factory, **kw)
    await host.start()
    return host, engines


def open_sessions(host: EngineHost, names: str) -> list[tuple[Recorder, Any]]:
    """One session per letter of ``names``, each with its own Recorder."""
    out = []
    for name in names:
        rec = Recorder()
        out.append((rec, host.open_session(name, rec.on_result, rec.on_failed, rec.on_error)))
    return out


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def answer_all(engine: FakeEngine) -> list[TranscribeRequest]:
    """Answer what the engine holds, oldest first (text "g<global id>"), until it is empty;
    return the requests in the order they were answered."""
    answered = []
    while engine.submitted:
        sent = engine.submitted.pop(0)
        answered.append(sent)
        engine.answer(sent, f"g{sent.request_id}")
        await settle()
    return answered


def test_round_robin_a_chatty_session_cannot_starve_another():
    async def main() -> None:
        host, (engine,) = await make_host(max_in_engine=1, max_queued=32)
        (a, sa), (b, sb), (c, sc) = open_sessions(host, "abc")
        for i in range(1, 11):
            host.submit(sa, req(i))
        host.submit(sb, req(1))
        host.submit(sc, req(1))
        host.submit(sc, req(2))
        assert len(engine.submitted) == 1 and host.queued == 12
        order = [sent.request_id for sent in await answer_all(engine)]
        # Global ids are unique; the sessions see their own ids back, in order.
        assert order == list(range(1, 14))
        assert a.results == [(i, f"g{g}") for i, g in zip(range(1, 11), [1, 4, 6, 7, 8, 9, 10,
                                                                            11, 12, 13],
                                                          strict=True)]
        assert b.results == [(1, "g2")]  # b's only final went second, not eleventh
        assert c.results == [(1, "g3"), (2, "g5")]
        assert host.queued == 0 and host.in_engine == 0
        assert host.answered["final"] == 13 and host.latency["final"].count == 13
        await host.close()
        assert engine.closed

    asyncio.run(main())


def test_finals_go_before_partials_which_wait_for_an_idle_engine():
    async def main() -> None:
        host, (engine,) = await make_host(max_in_engine=2)
        a, b = Recorder(), Recorder()
        sa = host.open_session("a", a.on_result, a.on_failed, a.on_error)
        sb = host.open_session("b", b.on_result, b.on_failed, b.on_error)
        host.submit(sa, req(1, "partial"))
        host.submit(sb, req(1, "partial"))  # waits: one partial in the engine at a time
        assert [r.kind for r in engine.submitted] == ["partial"]
        host.submit(sb, req(2, "partial"))  # coalesced: replaces b's waiting partial
        host.submit(sa, req(2, "final"))
        assert [r.kind for r in engine.submitted] == ["partial", "final"]
        engine.answer(engine.submitted.pop(0))
        await settle()
        # A partial only goes to an idle engine: not while a's final is in it.
        assert [r.kind for r in engine.submitted] == ["final"]
        engine.answer(engine.submitted.pop())
        await settle()
        assert [r.kind for r in engine.submitted] == ["partial"]
        engine.answer(engine.submitted.pop())
        await settle()
        assert b.results == [(2, "ok")]  # the replaced partial 1 never went out
        assert host.partials_replaced == 1
        await host.close()

    asyncio.run(main())


def test_a_partial_stopped_for_a_final_is_not_counted_as_failed():
    async def main() -> None:
        host, (engine,) = await make_host(max_in_engine=2)
        (a, sa), = open_sessions(host, "a")
        host.submit(sa, req(1, "partial"))
        host.submit(sa, req(2, "final"))
        partial, final = engine.submitted
        # The engine process stopped the partial after its encoder for the waiting final.
        engine.on_failed(partial, EngineError("stopped for a final", "PartialInterrupted"))
        engine.answer(final)
        await settle()
        assert a.failed == [1] and a.results == [(2, "ok")]
        assert host.failed == 0  # /metrics: nothing was lost
        host.submit(sa, req(3, "partial"))
        engine.on_failed(engine.submitted[-1], EngineError("boom", "RuntimeError"))
        await settle()
        assert a.failed == [1, 3] and host.failed == 1  # a real failure still counts
        await host.close()

    asyncio.run(main())


def test_finals_take_the_cheap_pass_while_others_wait():
    async def main() -> None:
        host, (engine,) = await make_host(max_in_engine=1, fast_finals_at=2)
        r = Recorder()
        slots = [host.open_session(str(i), r.on_result, r.on_failed, r.on_error)
                 for i in range(4)]
        for slot in slots:
            host.submit(slot, req(1))
        fast = []
        while engine.submitted:
            sent = engine.submitted.pop(0)
            fast.append(sent.hints.quality == "cheap")
            engine.answer(sent)
            await settle()
        # Finals still waiting behind each one as it goes out: 0, 2 (fast), 1, 0.
        assert fast == [False, True, False, False]
        assert host.fast_finals == 1
        await host.close()

    asyncio.run(main())


def test_early_finals_wait_behind_standing_finals_while_others_wait():
    """Under load an early final (speech may still make it stale) goes only to an idle
    engine when no standing final waits, or once confirmed; a stale one is withdrawn before
    the engine pays for it. On an idle engine an early final goes at once."""
    async def main() -> None:
        host, (engine,) = await make_host(max_in_engine=1, fast_finals_at=1)
        (a, sa), (b, sb), (c, sc) = open_sessions(host, "abc")
        host.submit(sa, req(1), early=True)
        assert [r.request_id for r in engine.submitted] == [1]  # idle: at once
        host.submit(sa, req(2, utterance=2), early=True)  # a's next, stale soon
        host.submit(sb, req(1), early=True)  # b's, confirmed soon
        host.submit(sc, req(1))  # c's stands
        host.submit(sc, req(2, utterance=2))

        async def answer_next() -> None:
            sent = engine.submitted.pop(0)
            engine.answer(sent, f"g{sent.request_id}")
            await settle()

        await answer_next()  # a's early final; next: c's standing one before b's early one
        assert c.results == [] and len(engine.submitted) == 1
        host.cancel(sa, 2)  # speech resumed: a's second early final never reaches the engine
        host.confirm(sb, 1)  # b's stands now: its turn comes before c's second
        for _ in range(3):
            await answer_next()
        assert a.results == [(1, "g1")]
        assert c.results == [(1, "g2"), (2, "g4")] and b.results == [(1, "g3")]
        assert host.queued == 0 and engine.submitted == [] and engine.cancelled == []
        host.submit(sa, req(3, utterance=3), early=True)
        host.submit(sb, req(2, utterance=2), early=True)
        await answer_next()  # only early finals wait: they go in turn, unconfirmed
        await answer_next()
        assert a.results[-1] == (3, "g5") and b.results[-1] == (2, "g6")
        await host.close()
        # With room in a busy engine, an early final still waits for an idle one (or its
        # confirmation): it would be paid for even if speech resumed meanwhile.
        host, (engine,) = await make_host(max_in_engine=2, fast_finals_at=1)
        (a, sa), (b, sb) = open_sessions(host, "ab")
        host.submit(sa, req(1))
        host.submit(sb, req(1), early=True)
        assert len(engine.submitted) == 1
        host.confirm(sb, 1)
        assert len(engine.submitted) == 2
        await host.close()

    asyncio.run(main())


def test_one_pass_picks_standing_finals_then_early_finals_then_partials():
    """Whatever their place in the turn order: a standing final first, then an early one
    (to an idle engine), then a partial; each session's turn moves only when it is served."""
    async def main() -> None:
        host, (engine,) = await make_host(max_in_engine=1, fast_finals_at=1)
        (a, sa), (b, sb), (c, sc), (d, sd), (e, se) = open_sessions(host, "abcde")
        host.submit(se, req(1))  # the engine is busy with e's final meanwhile
        host.submit(sa, req(1, "partial"))
        host.submit(sb, req(1), early=True)
        host.submit(sc, req(1), early=True)
        host.submit(sd, req(1))
        assert [sent.kind for sent in await answer_all(engine)] == ["final"] * 4 + ["partial"]
        assert [r.results for r in (e, d, b, c, a)] == [[(1, "g1")], [(1, "g2")], [(1, "g3")],
                                                        [(1, "g4")], [(1, "g5")]]
        await host.close()

    asyncio.run(main())


def test_admission_and_queue_limits_say_server_busy():
    async def main() -> None:
        host, _ = await make_host(max_sessions=2, max_queued=2, max_in_engine=1)
        r = Recorder()
        s1 = host.open_session("1", r.on_result, r.on_failed, r.on_error)
        host.open_session("2", r.on_result, r.on_failed, r.on_error)
        with pytest.raises(ServerBusy, match="all 2 sessions"):
            host.open_session("3", r.on_result, r.on_failed, r.on_error)
        host.submit(s1, req(1))  # into the engine
        host.submit(s1, req(2))
        host.submit(s1, req(3))
        with pytest.raises(ServerBusy, match="2 utterances"):
            host.submit(s1, req(4))
        assert host.rejected == 2
        host.close_session(s1)
        host.open_session("3", r.on_result, r.on_failed, r.on_error)  # room again
        await host.close()

    asyncio.run(main())


def test_closing_a_session_withdraws_its_requests_and_frees_the_engine():
    async def main() -> None:
        host, (engine,) = await make_host(max_in_engine=2)
        a, b = Recorder(), Recorder()
        sa = host.open_session("a", a.on_result, a.on_failed, a.on_error)
        sb = host.open_session("b", b.on_result, b.on_failed, b.on_error)
        for i in range(1, 4):
            host.submit(sa, req(i))
        host.submit(sb, req(1))
        assert [r.request_id for r in engine.submitted] == [1, 2]  # a's 1 and 2
        host.close_session(sa)
        assert sorted(engine.cancelled) == [1, 2]
        assert host.queued == 0
        # b's final got a slot at once; late answers for a's withdrawn requests are dropped.
        assert engine.submitted[-1].request_id == 3
        for sent in list(engine.submitted):
            engine.answer(sent)
        await settle()
        assert a.results == [] and b.results == [(1, "ok")]
        assert host.in_engine == 0 and host.sessions == 1
        await host.close()

    asyncio.run(main())


def test_cancel_removes_a_queued_or_running_request():
    async def main() -> None:
        host, (engine,) = await make_host(max_in_engine=1)
        a = Recorder()
        sa = host.open_session("a", a.on_result, a.on_failed, a.on_error)
        host.submit(sa, req(1))
        host.submit(sa, req(2))
        host.cancel(sa, 2)  # queued: just dropped
        host.cancel(sa, 1)  # in the engine: cancelled there
        assert engine.cancelled == [engine.submitted[0].request_id]
        assert host.queued == 0 and host.in_engine == 0
        assert host.cancelled == {"waiting": 1, "running": 1}
        host.cancel(sa, 1)  # already gone: nothing more is counted
        assert host.cancelled == {"waiting": 1, "running": 1}
        await host.close()

    asyncio.run(main())


def test_fatal_engine_error_reaches_every_session():
    async def main() -> None:
        host, (engine,) = await make_host()
        a, b = Recorder(), Recorder()
        host.open_session("a", a.on_result, a.on_failed, a.on_error)
        host.open_session("b", b.on_result, b.on_failed, b.on_error)
        engine.on_error(WorkerCrashed("gone"), True)
        await settle()
        assert [f for _, f in a.errors] == [True] and [f for _, f in b.errors] == [True]
        with pytest.raises(EngineUnavailable, match="gone"):
            host.open_session("c", a.on_result, a.on_failed, a.on_error)
        await host.close()

    asyncio.run(main())


def test_a_failed_engine_is_replaced_by_a_fresh_one_after_a_back_off():
    async def main() -> None:
        host, engines = await make_host(restart_backoff_s=0.05)
        a = Recorder()
        slot = host.open_session("a", a.on_result, a.on_failed, a.on_error)
        engines[0].on_error(WorkerCrashed("gone"), True)
        await settle()
        with pytest.raises(EngineUnavailable):
            host.submit(slot, req(1))
        for _ in range(100):
            if len(engines) == 2 and host.fatal is None:
                break
            await asyncio.sleep(0.01)
        assert len(engines) == 2 and engines[0].closed and host.fatal is None
        host.submit(slot, req(2))  # the fresh engine takes work
        assert [r.request_id for r in engines[1].submitted] == [1]
        assert host.restarts == 1
        await host.close()

    asyncio.run(main())


def test_an_engine_that_keeps_failing_makes_the_host_give_up():
    async def main() -> None:
        host, engines = await make_host(restart_backoff_s=0.01, max_restarts=2)
        engines[0].on_error(WorkerCrashed("first"), True)
        await settle()
        for _ in range(200):  # each fresh engine fails as soon as it runs
            if host.fatal is None:
                engines[-1].on_error(WorkerCrashed(f"crash {len(engines)}"), True)
            gave_up = asyncio.ensure_future(host.wait_gave_up())
            await asyncio.sleep(0.01)
            if gave_up.done():
                break
            gave_up.cancel()
        assert gave_up.done() and "crash 3" in str(gave_up.result())
        assert len(engines) == 3  # the first and max_restarts fresh ones
        await host.close()

    asyncio.run(main())


def test_real_engine_process_answers_each_session_with_its_own_ids():
    async def main() -> None:
        host = EngineHost(EngineConfig(engine="scripted", options={"delay_s": 0.02}),
                          max_in_engine=2)
        await host.start()
        recorders = [Recorder() for _ in range(4)]
        slots = [host.open_session(str(i), r.on_result, r.on_failed, r.on_error)
                 for i, r in enumerate(recorders)]
        for slot in slots:
            for i in range(1, 4):
                host.submit(slot, req(i))
        for _ in range(200):
            if all(len(r.results) == 3 for r in recorders):
                break
            await asyncio.sleep(0.02)
        assert [[rid for rid, _ in r.results] for r in recorders] == [[1, 2, 3]] * 4
        assert host.in_engine == 0 and host.queued == 0
        await host.close()

    asyncio.run(main())


def test_a_final_sent_while_another_is_transcribed_is_cheap():
    async def main() -> None:
        host, (engine,) = await make_host(max_in_engine=2, fast_finals_at=1)
        r = Recorder()
        a, b = (host.open_session(str(i), r.on_result, r.on_failed, r.on_error)
                for i in range(2))
        host.submit(a, req(1))
        host.submit(b, req(1))  # goes to the engine while a's final is in it
        cheap = [s.hints.quality == "cheap" for s in engine.submitted]
        assert cheap == [False, True]
        assert host.fast_finals == 1
        await host.close()

    asyncio.run(main())


def test_a_batching_engine_takes_its_batch_of_cheap_finals_while_shedding():
    """An engine whose ready info says max_batch 4 gets up to 2 + 3 finals while finals
    wait (all but the first cheap), so the child can decode them together; one without
    max_batch keeps max_in_engine; once the queue is gone, the limit is max_in_engine."""
    async def main() -> None:
        for batch, expected in ((4, 5), (1, 2)):
            host, (engine,) = await make_host(max_in_engine=2, fast_finals_at=1)
            engine.ready_info["max_batch"] = batch
            r = Recorder()
            sessions = [host.open_session(str(i), r.on_result, r.on_failed, r.on_error)
                        for i in range(8)]
            for s in sessions:
                host.submit(s, req(1))
            assert len(engine.submitted) == expected, batch
            assert [s.hints.quality for s in engine.submitted] == \
                [None] + ["cheap"] * (expected - 1)
            assert host.queued == 8 - expected
            answered = 0
            while answered < len(engine.submitted):  # answer all: the rest follow
                for sent in engine.submitted[answered:]:
                    engine.answer(sent)
                    answered += 1
                await settle()
            assert len(engine.submitted) == 8 and len(r.results) == 8
            assert host.in_engine == 0 and host.queued == 0
            await host.close()

    asyncio.run(main())
