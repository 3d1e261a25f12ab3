"""What cost per final would meet the telephone target? The real scheduler, in virtual time.

Replays the final requests of ``server_clients.py --telephone`` (N clients, 3 short human
recordings each, all starting at once; a final is submitted ``--end-s`` after each
utterance's speech ends, the server's end silence) through harken's real
:class:`~harken.server.engine_host.EngineHost` with ``--engines`` fake engines that take
``--cost`` seconds per final, one at a time each, on a virtual clock (no sleeping, no model:
the run takes a second and does not depend on the machine's load). Prints, per N and cost,
the p50 / p95 / max of queue wait + transcription, and that plus ``--end-s`` (the E2F a
client would see, less the network); then, per N, the largest cost whose E2F p95 is
<= 1.5 s. Partials and early finals are left out (under load the host sends neither ahead
of a standing final).

Usage: ``python benchmarks/host_replay.py [--clients 16,24,32] [--costs 0.06,0.1,0.2]
[--engines 2] [--end-s 0.5]``
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from server_clients import TARGET_P95_S, TELEPHONE, build, telephone_clips  # noqa: E402

from harken.config import EngineConfig  # noqa: E402
from harken.engine.base import EngineOutput, TranscribeRequest  # noqa: E402
from harken.server import engine_host  # noqa: E402

NOW = [0.0]
"""The virtual clock, seconds."""


class FakeEngine:
    """Takes requests in order, one at a time; the replay loop says when each is done."""

    def __init__(self, on_result: Any, on_failed: Any, on_error: Any) -> None:
        self.on_result = on_result
        self.queue: list[TranscribeRequest] = []
        self.busy = False
        self.ready_info: dict[str, Any] = {}
        self.restarts = 0

    def start(self) -> None:
        pass

    def submit(self, request: TranscribeRequest) -> None:
        self.queue.append(request)

    def cancel(self, request_id: int) -> None:
        self.queue = [r for r in self.queue if r.request_id != request_id]

    def close(self, timeout: float = 2.0) -> None:
        pass


def arrivals(n: int, end_s: float) -> list[tuple[float, int, int]]:
    """(virtual time, client, utterance) of each final request, in time order."""
    clips, _ = telephone_clips()
    out = []
    for c in range(n):
        for k, utt in enumerate(build(c, 3, clips, TELEPHONE.rate)[1]):
            out.append((utt.end + end_s, c, k + 1))
    return sorted(out)


async def replay(n: int, cost: float, engines: int, end_s: float) -> list[float]:
    """Seconds from each final's submission to its answer."""
    fakes: list[FakeEngine] = []

    def factory(*callbacks: Any) -> FakeEngine:
        fakes.append(FakeEngine(*callbacks))
        return fakes[-1]

    host = engine_host.EngineHost(EngineConfig(engine="scripted"), engines=engines,
                                  max_sessions=n, engine_factory=factory)
    await host.start()
    submitted: dict[tuple[int, int], float] = {}
    answered: dict[tuple[int, int], float] = {}

    def on_result(client: int) -> Any:
        return lambda request, *_: answered.setdefault((client, request.request_id), NOW[0])

    sessions = [host.open_session(str(c), on_result(c), lambda *_: None, lambda *_: None)
                for c in range(n)]
    events = [(t, 0, c, k) for t, c, k in arrivals(n, end_s)]  # kind 0: submit, 1: done
    heapq.heapify(events)
    while events:
        t, kind, a, b = heapq.heappop(events)
        NOW[0] = t
        if kind == 0:
            submitted[(a, b)] = t
            host.submit(sessions[a], TranscribeRequest(b, b, "final",
                                                       np.zeros(1600, np.float32), 0, 1600))
        else:
            fake = fakes[a]
            fake.busy = False
            fake.on_result(fake.queue.pop(0), EngineOutput("x"), cost, 1)
        for _ in range(4):  # the host's answers hop through the loop
            await asyncio.sleep(0)
        for i, fake in enumerate(fakes):
            if not fake.busy and fake.queue:
                fake.busy = True
                heapq.heappush(events, (NOW[0] + cost, 1, i, 0))
    await host.close()
    return [answered[key] - submitted[key] for key in submitted]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", default="16,24,32")
    ap.add_argument("--costs", default="0.06,0.08,0.1,0.12,0.15,0.2,0.25")
    ap.add_argument("--engines", type=int, default=2)
    ap.add_argument("--end-s", type=float, default=0.5,
                    help="seconds from the end of speech to the final request")
    args = ap.parse_args()
    engine_host.time.monotonic = lambda: NOW[0]  # type: ignore[attr-defined]
    costs = [float(x) for x in args.costs.split(",")]
    print(f"{args.engines} engines, one final at a time each; final requested "
          f"{args.end_s:g} s after the speech ends; seconds")
    for n in (int(x) for x in args.clients.split(",")):
        best = None
        for cost in costs:
            waits = asyncio.run(replay(n, cost, args.engines, args.end_s))
            p50, p95 = np.percentile(waits, 50), np.percentile(waits, 95)
            print(f"N={n:>3} cost {cost:.2f}: wait+transcribe p50 {p50:.2f} p95 {p95:.2f} "
                  f"max {max(waits):.2f}; E2F p95 {p95 + args.end_s:.2f}")
            if p95 + args.end_s <= TARGET_P95_S:
                best = cost
        print(f"N={n:>3}: largest cost per final with E2F p95 <= {TARGET_P95_S} s: "
              + (f"{best:.2f} s" if best is not None else "none tried"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
