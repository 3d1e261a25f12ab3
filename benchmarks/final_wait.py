"""How long a final waits in the engine process behind a partial that was already running.

With live partials on, the engine process is often transcribing a partial when the speaker
stops and the early final is sent; the final then waits for the rest of that pass. This
runs the real engine process (embedded tiny.en, harken's defaults) and, per trial, submits
a partial of a clip (greedy, no word timings, as the pipeline sends them), then after a
delay spread evenly over one partial pass, the final of the same clip; it reports the
final's latency (submit to answer), its compute time and the difference (the wait), and
how the partial ended. "alone" submits the final with no partial before it.

Run it against two source trees to compare (the engine process inherits PYTHONPATH):

    PYTHONPATH=/path/to/other/src python benchmarks/final_wait.py
    python benchmarks/final_wait.py [--trials 24]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np
from latency import load_utterances
from machine_info import machine

from harken.config import EngineConfig
from harken.engine.base import DecodeHints, EngineOutput, TranscribeRequest
from harken.worker.process import EngineProcess

PARTIAL = DecodeHints(beam_size=1, word_timestamps=False)


class Answers:
    """Answers of the engine process, by request id, with their arrival times."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.done: dict[int, tuple[str, float, float]] = {}  # id -> (how, at, compute s)

    def result(self, request: TranscribeRequest, output: EngineOutput, compute: float,
               attempts: int) -> None:
        self._put(request.request_id, "result", compute)

    def failed(self, request: TranscribeRequest, exc: BaseException) -> None:
        self._put(request.request_id, getattr(exc, "error_type", type(exc).__name__), 0.0)

    def _put(self, rid: int, how: str, compute: float) -> None:
        with self.cond:
            self.done[rid] = (how, time.perf_counter(), compute)
            self.cond.notify_all()

    def wait(self, rid: int, timeout: float = 30.0) -> tuple[str, float, float]:
        with self.cond:
            if not self.cond.wait_for(lambda: rid in self.done, timeout):
                raise TimeoutError(f"no answer to request {rid}")
            return self.done[rid]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    clips = [(u.audio.astype(np.float32) / 32768.0).astype(np.float32)
             for u in load_utterances(True, 3)]
    answers = Answers()
    engine = EngineProcess(EngineConfig(), on_result=answers.result,
                           on_failed=answers.failed, on_error=lambda exc, fatal: None)
    engine.start()
    next_id = iter(range(1, 1_000_000))

    def submit(audio: np.ndarray, kind: str, hints: DecodeHints) -> tuple[int, float]:
        rid = next(next_id)
        engine.submit(TranscribeRequest(rid, rid, kind, audio, 0, len(audio),  # type: ignore[arg-type]
                                        hints=hints))
        return rid, time.perf_counter()

    try:
        partial_s = []
        for audio in clips[:3]:
            rid, at = submit(audio, "partial", PARTIAL)
            partial_s.append(answers.wait(rid)[1] - at)
        one = statistics.median(partial_s)
        print(f"clips: {len(clips)} ({', '.join(f'{len(c) / 16000:.1f}' for c in clips)} s); "
              f"a partial pass takes {one * 1000:.0f} ms (median of 3)")
        rows: dict[str, list[tuple[float, float]]] = {"alone": [], "behind a partial": []}
        outcomes: dict[str, int] = {}
        for k in range(args.trials):
            audio = clips[k % len(clips)]
            rid, at = submit(audio, "final", DecodeHints())
            how, done, compute = answers.wait(rid)
            rows["alone"].append((done - at, compute))
            prid, _ = submit(audio, "partial", PARTIAL)
            time.sleep(one * (k + 0.5) / args.trials)
            rid, at = submit(audio, "final", DecodeHints())
            how, done, compute = answers.wait(rid)
            rows["behind a partial"].append((done - at, compute))
            outcome = answers.wait(prid)[0]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        engine.close()
    print(f"{'final':18} {'latency p50':>12} {'mean':>6} {'compute p50':>12} "
          f"{'wait p50':>9} {'mean':>6}   (ms)")
    for name, values in rows.items():
        latency = [v[0] for v in values]
        waits = [v[0] - v[1] for v in values]
        print(f"{name:18} {statistics.median(latency) * 1000:>12.0f} "
              f"{statistics.mean(latency) * 1000:>6.0f} "
              f"{statistics.median(v[1] for v in values) * 1000:>12.0f} "
              f"{statistics.median(waits) * 1000:>9.0f} {statistics.mean(waits) * 1000:>6.0f}")
    print("the partials before them: " + ", ".join(f"{n} {how}" for how, n in outcomes.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
