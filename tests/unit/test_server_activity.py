"""The operator view's numbers: a connection's Activity (E2F by hand) and the snapshot.

Pure: the clock is passed in, and the snapshot is read from a Server that was constructed
but not started (no aiohttp, no engine program), so it is compared with the very numbers
``/metrics`` renders.
"""

from __future__ import annotations

import pytest

from harken.config import EngineConfig
from harken.server.activity import Activity
from harken.server.app import Server, ServerConfig
from harken.server.monitor import snapshot


def test_e2f_runs_from_the_arrival_of_the_utterances_last_audio_to_the_final():
    a = Activity("harken", opened_at=100.0)
    for i in range(1, 31):  # 0.1 s messages arriving every 0.1 s from t=100.1
        a.audio(i / 10, 100.0 + i / 10)
    # Speech ended at 1.25 s of stream time: the message holding it arrived at t=101.3.
    assert a.final("hello there", 1.25, now=101.9) == pytest.approx(0.6)
    assert (a.last_final, a.finals) == ("hello there", 1)
    row = a.describe("s1", now=104.0)
    assert row == {"name": "s1", "protocol": "harken", "duration_s": 4.0, "audio_s": 3.0,
                   "finals": 1, "last_final": "hello there", "e2f_s": 0.6}


def test_e2f_is_unknown_when_the_audio_is_not_known_and_a_new_stream_starts_over():
    a = Activity("harken", opened_at=0.0)
    a.audio(1.0, 5.0)
    a.audio(1.0, 6.0)  # no new audio: the first arrival counts
    assert a.final("x", 0.7, now=5.5) == pytest.approx(0.5)
    assert a.final("late", 2.0, now=7.0) is None  # audio up to 2.0 s never arrived
    a.new_stream()
    assert a.audio_s == 0.0
    a.audio(0.5, 10.0)
    assert a.final("again", 0.5, now=10.25) == pytest.approx(0.25)


class _Conn:
    def __init__(self, name: str, activity: Activity | None) -> None:
        self.name = name
        if activity is not None:
            self.activity = activity

    async def shutdown(self, timeout: float) -> None:
        pass


def test_snapshot_uses_the_numbers_metrics_renders_and_lists_sessions_not_viewers():
    server = Server(ServerConfig(port=0, engine=EngineConfig(engine="scripted")))
    server.engine.compute_seconds, server.engine.audio_seconds = 3.0, 40.0
    b, a = Activity("rtstt", 10.0), Activity("harken", 11.0)
    a.audio(2.0, 12.0)
    a.final("good morning", 2.0, 12.4)
    for conn in (_Conn("s2-b", b), _Conn("s1-a", a), _Conn("viewer", None)):
        server.connections.add(conn)
    snap = snapshot(server, now=20.0)
    metrics = {m.name: m.samples.get("") for m in server.metrics()}
    assert snap["rtf"] == metrics["harken_engine_rtf"] == 0.075
    assert snap["queue_depth"] == metrics["harken_engine_queue_depth"] == 0
    assert snap["in_engine"] == metrics["harken_engine_inflight"] == 0
    assert snap["sessions"] == metrics["harken_sessions"]
    assert snap["max_sessions"] == metrics["harken_max_sessions"]
    assert snap["engines"] == server.engine.engines  # what /health and /metrics report
    assert [(r["name"], r["protocol"], r["last_final"], r["e2f_s"], r["duration_s"])
            for r in snap["connections"]] == [("s1-a", "harken", "good morning", 0.4, 9.0),
                                              ("s2-b", "rtstt", "", None, 10.0)]
