"""Fault injection benchmark: random SIGKILLs and hangs of the engine process during a long
stream, and how many utterances were lost.

Streams ``--utterances`` tone bursts (1 s of tone, 1.2 s of silence, scripted VAD) through a
Recorder with the scripted engine (``delay_s`` per request, so requests spend time inside the
engine), ``--speed`` times faster than real time. Meanwhile, at random wall-clock times
(seeded, at least ``--min-gap`` seconds apart), it injects ``--kills`` SIGKILLs of the engine
process and ``--hangs`` hangs: deleting the scripted engine's ``hang_marker`` file makes its
next request sleep forever, which the watchdog must detect (``request_timeout_s``) and
recover from. At the end it prints the faults injected, the utterances that got no final or
more than one, and the recovery cost.

Runs on the main thread (feeding) plus one "bench-faults" thread (injecting); the recorder's
threads are its own.

Usage: python benchmarks/faults.py [--utterances 60] [--kills 6] [--hangs 4] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

from harken.errors import WorkerCrashed
from harken.events import FinalTranscript
from harken.recorder import Recorder
from harken.testing import ScriptedVad, silence, tone

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak import machine  # noqa: E402

RATE = 16000
"""Sample rate of the generated audio, in Hz."""
CHUNK = 1600
"""Samples per feed_audio() call (100 ms)."""


def stream(n: int, speech_s: float = 1.0, gap_s: float = 1.2
           ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``n`` tone bursts with silence after each, and their speech intervals in seconds."""
    cycle = np.concatenate([tone(speech_s), silence(gap_s)])
    intervals = [(i * (speech_s + gap_s), i * (speech_s + gap_s) + speech_s) for i in range(n)]
    return np.tile(cycle, n), intervals


def schedule(rng: random.Random, kills: int, hangs: int, span_s: float,
             min_gap_s: float) -> list[tuple[float, str]]:
    """Random (time in seconds, "kill" | "hang") pairs in [0.5, span_s], min_gap_s apart."""
    kinds = ["kill"] * kills + ["hang"] * hangs
    rng.shuffle(kinds)
    for _ in range(10_000):
        times = sorted(rng.uniform(0.5, span_s) for _ in kinds)
        if all(b - a >= min_gap_s for a, b in zip(times, times[1:], strict=False)):
            return list(zip(times, kinds, strict=True))
    raise SystemExit(f"cannot fit {len(kinds)} faults {min_gap_s} s apart into {span_s} s; "
                     "lower --min-gap or slow down with --speed")


def main() -> int:
    """Run the stream with faults and print the figures; exit status 1 on any loss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=60)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--hangs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=4.0,
                        help="feed this many times faster than real time (default 4)")
    parser.add_argument("--min-gap", type=float, default=1.5,
                        help="seconds between two faults at least (default 1.5)")
    parser.add_argument("--delay", type=float, default=0.2,
                        help="scripted engine seconds per request (default 0.2)")
    parser.add_argument("--request-timeout", type=float, default=1.0,
                        help="Recorder request_timeout_s: the hang detection budget")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    audio, speech = stream(args.utterances)
    feed_s = len(audio) / RATE / args.speed
    plan = schedule(rng, args.kills, args.hangs, feed_s, args.min_gap)
    finals: list[FinalTranscript] = []
    errors: list[BaseException] = []
    injected: Counter[str] = Counter()
    hung: list[float] = []
    stop = threading.Event()

    with tempfile.TemporaryDirectory(prefix="harken-faults-") as tmp:
        marker = Path(tmp) / "hang"
        marker.write_text("armed only when deleted\n")
        rec = Recorder(source="push", engine="scripted",
                       options={"delay_s": args.delay, "hang_marker": str(marker)},
                       vad_detector=ScriptedVad(speech), request_timeout_s=args.request_timeout,
                       on_event=lambda e: finals.append(e) if isinstance(
                           e, FinalTranscript) else None,
                       on_error=errors.append)

        def inject(t0: float) -> None:
            for at, kind in plan:
                if stop.wait(max(0.0, t0 + at - time.monotonic())):
                    return
                if kind == "kill":
                    pid = rec.engine_pid
                    if pid is not None:
                        try:
                            os.kill(pid, signal.SIGKILL)
                            injected["kill"] += 1
                        except ProcessLookupError:
                            pass
                else:
                    marker.unlink(missing_ok=True)  # the next request hangs
                    injected["hang"] += 1
                    hung.append(time.monotonic())

        print(f"machine: {machine()}")
        print(f"{args.utterances} utterances ({len(audio) / RATE:.0f} s of audio fed in "
              f"{feed_s:.0f} s), faults planned: {[f'{k}@{t:.1f}s' for t, k in plan]}",
              flush=True)
        fatal: BaseException | None = None
        reported = 0
        t0 = time.monotonic()
        rec.start()
        injector = threading.Thread(target=inject, args=(time.monotonic(),),
                                    name="bench-faults", daemon=True)
        injector.start()
        try:
            for i in range(0, len(audio), CHUNK):
                rec.feed_audio(audio[i:i + CHUNK])
                time.sleep(CHUNK / RATE / args.speed)
            injector.join()
            rec.flush(120)
            while True:  # what text() would give: finals, and failures raised in-band
                try:
                    rec.next_final(timeout=0)
                except TimeoutError:
                    break
                except Exception:  # an utterance that failed, reported to the user
                    reported += 1
        except Exception as exc:  # report a fatal failure as a figure, not a traceback
            fatal = exc
        finally:
            stop.set()
            injector.join(5)
            rec.close(timeout=5)
        wall = time.monotonic() - t0
        hangs_hit = injected["hang"] - (0 if marker.exists() else 1)

    counts = Counter(f.utterance_id for f in finals)
    lost = [i for i in range(1, args.utterances + 1) if i not in counts]
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    retried = sum(1 for f in finals if f.attempts > 1)
    crashes = sum(1 for e in errors if isinstance(e, WorkerCrashed))
    print(f"faults injected: {injected['kill']} SIGKILL, {injected['hang']} hang "
          f"({hangs_hit} hit a request)")
    print(f"WorkerCrashed errors: {crashes}; finals re-sent after a fault: {retried}; "
          f"max attempts: {max((f.attempts for f in finals), default=0)}")
    print(f"utterances: {args.utterances}, finals: {len(finals)}, lost: {len(lost)} {lost} "
          f"(reported to the user as failed: {reported}, silently lost: "
          f"{len(lost) - reported}), duplicated: {duplicated}")
    print(f"wall: {wall:.1f} s (feeding alone: {feed_s:.1f} s); errors: {len(errors)}; "
          f"fatal: {fatal!r}")
    return 1 if lost or duplicated or fatal else 0


if __name__ == "__main__":
    raise SystemExit(main())
