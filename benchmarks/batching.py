"""Would batching concurrent finals help on CPU? Cost of B finals in one CTranslate2 call.

Runs the engine's fast final pass by hand on the human recordings in tests/data (each
padded to one 15 s window, as harken's final pass does for audio under 14 s): for a batch
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

Usage: python benchmarks/batching.py [--repeats 5] [--sizes 1,2,4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import wave
from pathlib import Path

import machine_info
import numpy as np

from harken.config import EngineConfig
from harken.engine.faster_whisper import FasterWhisperEngine

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
FRAMES = 1500  # a 15 s window: harken's final pass for audio under 14 s
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
    args = parser.parse_args()
    print(f"machine: {machine_info.machine()}")
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


if __name__ == "__main__":
    sys.exit(main())
