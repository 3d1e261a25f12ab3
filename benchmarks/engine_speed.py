"""Benchmark one faster-whisper pass: what makes a short pass cheaper, and what it costs in WER.

Runs FasterWhisperEngine (embedded tiny.en, int8, CPU) in this process on the human
recordings in tests/data (1-8 s, with transcripts) and on espeak-ng sentences, and prints
the machine and a table: setting, audio length bucket, median milliseconds per pass (over
every clip in the bucket and every repeat) and WER. WER of the recordings is against their
human transcripts; WER of the espeak sentences is against the plain beam-5 pass of the same
audio (tiny.en mishears espeak's robotic voice, so the sentence text is no fair reference).

Settings: harken's final default (beam 5, word timestamps, temperature fallback), the same
without word timestamps, beam 1, ``without_timestamps=True``, fallback off
(``temperature=0``), the fast pass (a window of the audio + 1 s, at least 10 s, instead of
Whisper's 30 s pad: harken's partial pass), the fast pass with beam 5 (``fast_finals``), and
``cpu_threads`` 1, 2 and 0 (CTranslate2's choice) for beam 1 and the fast pass.

Measured (2026-11, 2-core AMD EPYC shared with other jobs, load average 5-7, --repeats 2;
median ms for 0-3 / 3-5 / 5-8.5 s of audio, WER on the human recordings):

- final default (beam 5 + words): 2842 / 1946 / 2878 ms, WER 0.25 / 0 / 0.026
- beam 1, without_timestamps, temperature 0: 2543 / 1952 / 2072 ms, WER 0.25 / 0 / 0.034
- fast pass beam 1 (partials): 399 / 470 / 741 ms, WER 0.25 / 0 / 0.034
- fast pass beam 5 (fast_finals): 477 / 632 / 985 ms, WER 0.25 / 0 / 0.017, but 0.14 WER
  against the plain pass on 3-5 s espeak sentences, so finals keep the plain pass by default
- cpu_threads 1 is slower than 2 or 0 (CTranslate2's choice), which are alike here.

Usage: python benchmarks/engine_speed.py [--repeats 3] [--quick]
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
from harken.testing import word_errors

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
ESPEAK = [
    "turn the lights off in the kitchen",
    "the quick brown fox jumps over the lazy dog",
    "please remind me to call my sister tomorrow morning at nine",
    "what is the weather going to be like this weekend in the mountains near the lake",
]
BUCKETS = ((0.0, 3.0), (3.0, 5.0), (5.0, 8.5))


def machine() -> str:
    """One line describing the machine and the libraries."""
    import ctranslate2
    import faster_whisper

    return (f"{machine_info.machine()}, faster-whisper {faster_whisper.__version__}, "
            f"ctranslate2 {ctranslate2.__version__}")


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as handle:
        raw = handle.readframes(handle.getnframes())
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0


def espeak(text: str) -> np.ndarray:
    import subprocess

    import soxr

    raw = subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "--stdout", text],
                         check=True, capture_output=True).stdout
    import io

    with wave.open(io.BytesIO(raw), "rb") as handle:
        rate = handle.getframerate()
        samples = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
    audio = samples.astype(np.float32) / 32768.0
    return np.asarray(soxr.resample(audio, rate, 16000), dtype=np.float32)


def clips(quick: bool) -> list[tuple[str, np.ndarray, str | None]]:
    """(name, audio, reference or None for espeak) for every test clip of 8.5 s or less."""
    manifest = json.loads((DATA / "manifest.json").read_text())
    found = [(name, read_wav(DATA / f"{name}.wav"), str(entry["text"]))
             for name, entry in sorted(manifest.items()) if entry["seconds"] <= 8.5]
    if quick:
        found = found[::2]
    found += [(f"espeak:{text[:16]}", espeak(text), None)
              for text in (ESPEAK[::2] if quick else ESPEAK)]
    return found


SETTINGS: list[tuple[str, str, dict[str, Any], int]] = [
    # (label, kind, per-request options, cpu_threads)
    ("final default: beam 5 + words", "final", {}, 2),
    ("beam 5, no word timestamps", "final", {"word_timestamps": False}, 2),
    ("beam 5, without_timestamps", "final",
     {"word_timestamps": False, "without_timestamps": True}, 2),
    ("beam 1", "final", {"beam_size": 1, "word_timestamps": False}, 2),
    ("beam 1, without_timestamps, temperature 0", "final",
     {"beam_size": 1, "word_timestamps": False, "without_timestamps": True,
      "temperature": 0.0}, 2),
    ("fast pass beam 1 (partial default)", "partial", {"beam_size": 1}, 2),
    ("fast pass beam 5 (fast_finals)", "final", {"fast_finals": True}, 2),
    ("beam 1, cpu_threads=1", "final", {"beam_size": 1, "word_timestamps": False}, 1),
    ("beam 1, cpu_threads=0", "final", {"beam_size": 1, "word_timestamps": False}, 0),
    ("fast pass beam 1, cpu_threads=1", "partial", {"beam_size": 1}, 1),
    ("fast pass beam 1, cpu_threads=0", "partial", {"beam_size": 1}, 0),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="passes per clip (median)")
    parser.add_argument("--quick", action="store_true", help="every other clip")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    audio_clips = clips(args.quick)
    engines: dict[int, FasterWhisperEngine] = {}

    def engine(threads: int) -> FasterWhisperEngine:
        if threads not in engines:
            engines[threads] = FasterWhisperEngine(EngineConfig(
                model="tiny.en", cpu_threads=threads, language="en"))
            engines[threads].load()
            engines[threads].transcribe(audio_clips[0][1])  # warm up
        return engines[threads]

    for _, _, _, threads in SETTINGS:
        engine(threads)
    # Settings take turns on every clip and repeat, so a change in the machine's load
    # (other jobs) hits every setting alike instead of whichever ran at the time.
    times = {(k, b): [] for k in range(len(SETTINGS)) for b in range(len(BUCKETS))}
    errors = {(k, b): [0, 0, 0, 0] for k in range(len(SETTINGS)) for b in range(len(BUCKETS))}
    texts: dict[tuple[int, str], str] = {}
    for name, audio, _ in audio_clips:
        seconds = len(audio) / 16000
        bucket = next(i for i, (lo, hi) in enumerate(BUCKETS) if lo <= seconds < hi)
        for _ in range(args.repeats):
            for k, (_, kind, options, threads) in enumerate(SETTINGS):
                started = time.perf_counter()
                out = engines[threads].transcribe(audio, kind=kind,  # type: ignore[arg-type]
                                                  options=dict(options))
                times[k, bucket].append(time.perf_counter() - started)
                texts[k, name] = out.text
        print(f"  done: {name}", file=sys.stderr, flush=True)
    rows: list[tuple[str, str, float, float, float, int]] = []
    for k, (label, _, _, _) in enumerate(SETTINGS):
        for b, (lo, hi) in enumerate(BUCKETS):
            if not times[k, b]:
                continue
            for name, audio, reference in audio_clips:
                seconds = len(audio) / 16000
                if not lo <= seconds < hi:
                    continue
                if reference is None:  # espeak: against the plain beam-5 pass (setting 0)
                    e, n = word_errors(texts[0, name], texts[k, name])
                    errors[k, b][2] += e
                    errors[k, b][3] += n
                else:
                    e, n = word_errors(reference, texts[k, name])
                    errors[k, b][0] += e
                    errors[k, b][1] += n
            counts = errors[k, b]
            rows.append((label, f"{lo:g}-{hi:g} s", statistics.median(times[k, b]) * 1000,
                         counts[0] / counts[1] if counts[1] else float("nan"),
                         counts[2] / counts[3] if counts[3] else float("nan"),
                         len(times[k, b])))
    print(f"{'setting':44s} {'audio':>9s} {'median ms':>10s} {'WER human':>10s} "
          f"{'WER espeak':>11s} {'passes':>7s}")
    for label, bucket_label, ms, human, synth, count in rows:
        print(f"{label:44s} {bucket_label:>9s} {ms:10.0f} {human:10.3f} {synth:11.3f} "
              f"{count:7d}")
    for eng in engines.values():
        eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
