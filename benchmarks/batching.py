"""Would batching concurrent finals help on CPU? Cost of B finals in one CTranslate2 call.

Runs the engine's fast final pass by hand on the human recordings in tests/data (each
padded to one 15 s window, as harken's final pass did for audio under 14 s before its
window became 12 s): for a batch
size B, B clips are encoded in one ``encode`` call and decoded in one ``generate`` call
(beam 5, no timestamps), against B separate calls. Prints the machine, then per B the
median wall time of the batched call, of the B separate calls, the ratio (below 1: batching
saves time), and how much later the *first* of the B finals would be ready (a batch
answers all its finals at once; separately the first is ready after one call).

Measured (2026-11-26, 2-core AMD EPYC, load 1.7-2.4, ``--repeats 2``, 11 recordings):
batched / separate time 1.04 for B=1, 0.89 for B=2, 1.02 for B=4; the first final of a batch
of 2 was ready after 1015 ms instead of 540 ms. On 2 CPU cores the encoder is compute-bound,
so batching saves at most ~10% of the engine's time and doubles the wait of the first
final: the server sheds load with a cheaper pass instead (see harken.server.engine_host).

``--cheap``: the engine's own load-shedding path instead, as the server runs it: the short
human recordings (5.5 s or less) at telephone rate (8 kHz and back), B "cheap" finals
(greedy, window of the audio + 1 s, 10 s at least, word timings on) through
``FasterWhisperEngine.transcribe_batch`` against B ``transcribe`` calls; it prints CPU time
(all threads; less disturbed by other work than wall time) and wall time per final, and
whether every text came out the same. ``--threads`` sets the engine's CPU threads.

Measured (2026-12-01, 2-core AMD EPYC shared with other work, load 6-9, ``--cheap
--threads 1 --repeats 3``): see the report of issue 17; on that machine wall times were
several times the CPU times, so compare the CPU columns.

Usage: python benchmarks/batching.py [--repeats 5] [--sizes 1,2,4] [--cheap] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import wave
from pathlib import Path
from typing import Any

import machine_info
import numpy as np

from harken.config import EngineConfig
from harken.engine.faster_whisper import FasterWhisperEngine

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
FRAMES = 1500  # a 15 s window: harken's final pass for audio under 14 s until 12 s
HOP = 160


def clips() -> list[np.ndarray]:
    manifest = json.loads((DATA / "manifest.json").read_text())
    found = []
    for name, entry in sorted(manifest.items()):
        if entry["seconds"] <= 14.0:
            with wave.open(str(DATA / f"{name}.wav")) as handle:
                raw = handle.readframes(handle.getnframes())
            found.append(np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="1,2,4")
    parser.add_argument("--cheap", action="store_true",
                        help="the engine's cheap-final batch path on telephone-rate prompts")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {machine_info.machine()}")
    if args.cheap:
        return cheap(args.sizes, args.repeats, args.threads)
    import ctranslate2

    engine = FasterWhisperEngine(EngineConfig())
    engine.load()
    model = engine._model
    tokenizer = engine._tokenizer("en")
    prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
    features = []
    for audio in clips():
        padded = np.zeros(FRAMES * HOP, np.float32)
        padded[:len(audio)] = audio[:FRAMES * HOP]
        features.append(model.feature_extractor(padded, padding=HOP)[:, :FRAMES])

    def run(batch: list[np.ndarray]) -> float:
        started = time.perf_counter()
        stacked = ctranslate2.StorageView.from_array(np.ascontiguousarray(np.stack(batch)))
        encoded = model.model.encode(stacked, to_cpu=False)
        model.model.generate(encoded, [prompt] * len(batch), beam_size=5, max_length=120)
        return time.perf_counter() - started

    run(features[:1])  # warm up
    print(f"{'B':>2} {'batched ms':>11} {'separate ms':>12} {'ratio':>6} "
          f"{'first final ready, batched / separate ms':>42}")
    for size in (int(x) for x in args.sizes.split(",")):
        together, apart, first = [], [], []
        for repeat in range(args.repeats):
            for start in range(0, len(features) - size + 1, size):
                batch = features[start:start + size]
                if (repeat + start) % 2:  # alternate the order: load changes hit both
                    together.append(run(batch))
                    singles = [run([f]) for f in batch]
                else:
                    singles = [run([f]) for f in batch]
                    together.append(run(batch))
                apart.append(sum(singles))
                first.append(singles[0])
        t, a = statistics.median(together), statistics.median(apart)
        print(f"{size:2d} {t * 1000:11.0f} {a * 1000:12.0f} {t / a:6.2f} "
              f"{t * 1000:21.0f} / {statistics.median(first) * 1000:.0f}")
    print("note: a batch answers all its finals when the last is done; separately the first "
          "final is ready after one call. Batching pays only if the ratio is well below 1.")
    engine.close()
    return 0


def cheap(sizes: str, repeats: int, threads: int) -> int:
    """B cheap finals batched against B alone, through the engine (see the docstring)."""
    import soxr

    from harken.engine.base import DecodeHints

    short = [soxr.resample(soxr.resample(a, 16000, 8000), 8000, 16000).astype(np.float32)
             for a in clips() if len(a) <= 5.5 * 16000]
    engine = FasterWhisperEngine(EngineConfig(cpu_threads=threads))
    engine.load()
    hints = DecodeHints(quality="cheap")
    engine.transcribe(short[0], kind="final", hints=hints)  # warm up

    def timed(work: Any) -> tuple[float, float, Any]:
        cpu, wall = time.process_time(), time.perf_counter()
        out = work()
        return time.process_time() - cpu, time.perf_counter() - wall, out

    print(f"{len(short)} prompts, {threads} thread(s); per final, medians over "
          f"{repeats} repeats")
    print(f"{'B':>2} {'batch CPU ms':>12} {'alone CPU ms':>12} {'CPU ratio':>9} "
          f"{'batch wall ms':>13} {'alone wall ms':>13} {'same text':>9}")
    for size in (int(x) for x in sizes.split(",")):
        rows = []
        for repeat in range(repeats):
            batch = [short[(repeat + i) % len(short)] for i in range(size)]
            together = timed(lambda b=batch: [
                out if out is not None else engine.transcribe(a, kind="final", hints=hints)
                for a, out in zip(b, engine.transcribe_batch([(a, hints) for a in b]),
                                  strict=True)])
            alone = timed(lambda b=batch: [engine.transcribe(a, kind="final", hints=hints)
                                           for a in b])
            same = [o.text for o in together[2]] == [o.text for o in alone[2]]
            rows.append((together[0] / size, alone[0] / size, together[1] / size,
                         alone[1] / size, same))
        med = [statistics.median(r[k] for r in rows) for k in range(4)]
        print(f"{size:2d} {med[0] * 1000:12.0f} {med[1] * 1000:12.0f} {med[0] / med[1]:9.2f} "
              f"{med[2] * 1000:13.0f} {med[3] * 1000:13.0f} "
              f"{sum(r[4] for r in rows):>5}/{len(rows)}")
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
