"""Benchmark one faster-whisper pass: what makes a short pass cheaper, and what it costs in WER.

Runs FasterWhisperEngine (embedded tiny.en, int8, CPU) in this process on the human
recordings in tests/data (1-8.5 s, with transcripts) and on espeak-ng sentences in four
voices, and prints the machine and a table: setting, audio length bucket, median
milliseconds per pass (over every clip in the bucket and every repeat) and WER against the
truth (the human transcripts; the sentence text for espeak, which tiny.en mishears more).
The last table sums every bucket: WER over all words and the median time as a ratio of the
plain pass's on the same clips.

Settings: the plain pass (faster-whisper's own 30 s window, beam 5, word timestamps,
temperature fallback; harken's final pass before fast finals), the same without word
timestamps, beam 1, ``without_timestamps=True``, fallback off (``temperature=0``), the fast
pass (a window of the audio + 1 s instead of Whisper's 30 s pad) as harken's final default
(at least 12 s, beam 5, word timings by alignment, plain pass when doubtful) and with a
15 s, 10 s or 20 s window, beams 4, 3 and 2, without word timings, the partial default
(10 s, beam 1), and ``cpu_threads`` 1 and 0 (CTranslate2's choice) for beam 1 and the
fast pass.

Measured (2026-11-26, 2-core AMD EPYC shared with other jobs, load 2-4, ``--repeats 1
--only "fast final"``; 12 human recordings up to 8.5 s and 32 espeak sentences with 250 ms of
silence after each; WER human / espeak / all, median time as a ratio of the plain pass):

- plain pass (beam 5 + words): WER 3.7% / 15.3% / 11.3%, 1.00 (1107-1284 ms median)
- fast final, 15 s window (then the default, words by alignment): WER 1.9% / 11.7% / 8.3%, 0.47
- the same without word timings: same WER, 0.43
- fast final, 10 s window: WER 3.1% / 12.7% / 9.4%, 0.36
- fast final, 20 s window: WER 1.9% / 12.3% / 8.8%, 0.55
- cpu_threads 1 is slower than 2 or 0 (CTranslate2's choice), which are alike here.

Measured (2026-12-02, the same machine, load 4-9, ``--repeats 1 --only "fast final"``), the
final window and beam (issue 16: a shorter final pass for smart turns):

- fast final, 15 s window (the default until then): WER 1.9% / 13.3% / 9.4%, 0.41
- fast final, 12 s window (the default now): WER 1.9% / 13.0% / 9.2%, 0.36
- the 15 s window without word timings: same WER, 0.38
- in the 15 s window, beam 4: same WER, 0.42; beam 3: 9.8%, 0.38; beam 2: 9.8%, 0.37
  (espeak 14.0%); 12 s and beam 3: 10.0%, 0.32, and no word timings: 10.0%, 0.30
- 10 s window: 10.5%, 0.31

Usage: python benchmarks/engine_speed.py [--repeats 3] [--quick] [--only plain,fast]
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
from harken.engine.base import DecodeHints
from harken.engine.faster_whisper import FasterWhisperEngine
from harken.testing import word_errors

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
ESPEAK = [
    "turn the lights off in the kitchen",
    "the quick brown fox jumps over the lazy dog",
    "please remind me to call my sister tomorrow morning at nine",
    "what is the weather going to be like this weekend in the mountains near the lake",
    "she sells sea shells by the sea shore",
    "the meeting has been moved to thursday afternoon",
    "can you send me the report before lunch",
    "my flight leaves from gate twelve at half past six",
]
VOICES = ("en-us", "en", "en-us+f3", "en+m3")
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


def espeak(text: str, voice: str) -> np.ndarray:
    """The sentence spoken by espeak-ng, 16 kHz, with 250 ms of silence after it (as a VAD
    cut leaves)."""
    import subprocess

    import soxr

    raw = subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "--stdout", text],
                         check=True, capture_output=True).stdout
    import io

    with wave.open(io.BytesIO(raw), "rb") as handle:
        rate = handle.getframerate()
        samples = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
    audio = np.asarray(soxr.resample(samples.astype(np.float32) / 32768.0, rate, 16000),
                       dtype=np.float32)
    return np.concatenate([audio, np.zeros(4000, np.float32)])


def clips(quick: bool) -> list[tuple[str, np.ndarray, str, bool]]:
    """(name, audio, reference, is_human) for every test clip of 8.5 s or less and the
    espeak sentences."""
    manifest = json.loads((DATA / "manifest.json").read_text())
    found = [(name, read_wav(DATA / f"{name}.wav"), str(entry["text"]), True)
             for name, entry in sorted(manifest.items()) if entry["seconds"] <= 8.5]
    if quick:
        found = found[::2]
    found += [(f"espeak:{voice}:{text[:16]}", espeak(text, voice), text, False)
              for voice in (VOICES[:2] if quick else VOICES)
              for text in (ESPEAK[::2] if quick else ESPEAK)]
    return found


PLAIN = "standard"
"""The quality hint of faster-whisper's own pass (the plain pass)."""
GREEDY_NO_WORDS = {"beam_size": 1, "word_timestamps": False}

SETTINGS: list[tuple[str, str, DecodeHints, int]] = [
    # (label, kind, per-request hints, cpu_threads); the first is the reference for ratios
    ("plain: beam 5 + words", "final", DecodeHints(quality=PLAIN), 2),
    ("plain: beam 5, no word timestamps", "final",
     DecodeHints(quality=PLAIN, word_timestamps=False), 2),
    ("plain: beam 1, without_timestamps, temp 0", "final",
     DecodeHints(quality=PLAIN, **GREEDY_NO_WORDS,
                 extra={"without_timestamps": True, "temperature": 0.0}), 2),
    ("fast final (default): 12 s, beam 5 + words", "final", DecodeHints(), 2),
    ("fast final: 12 s, beam 5, no words", "final", DecodeHints(word_timestamps=False), 2),
    ("fast final: 15 s window", "final",
     DecodeHints(extra={"fast_final_min_window_s": 15.0}), 2),
    ("fast final: 10 s window", "final",
     DecodeHints(extra={"fast_final_min_window_s": 10.0}), 2),
    ("fast final: 20 s window", "final",
     DecodeHints(extra={"fast_final_min_window_s": 20.0}), 2),
    ("fast final: beam 4", "final", DecodeHints(beam_size=4), 2),
    ("fast final: beam 3", "final", DecodeHints(beam_size=3), 2),
    ("fast final: beam 2", "final", DecodeHints(beam_size=2), 2),
    ("fast partial (default): 10 s, beam 1", "partial", DecodeHints(beam_size=1), 2),
    ("plain: beam 1, cpu_threads=1", "final", DecodeHints(quality=PLAIN, **GREEDY_NO_WORDS), 1),
    ("plain: beam 1, cpu_threads=0", "final", DecodeHints(quality=PLAIN, **GREEDY_NO_WORDS), 0),
    ("fast partial, cpu_threads=1", "partial", DecodeHints(beam_size=1), 1),
    ("fast partial, cpu_threads=0", "partial", DecodeHints(beam_size=1), 0),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="passes per clip (median)")
    parser.add_argument("--quick", action="store_true",
                        help="every other recording and sentence, two voices")
    parser.add_argument("--only", default="",
                        help="comma-separated words; run the settings whose label has one "
                             "(the plain pass always runs: it is the reference)")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    settings = [item for k, item in enumerate(SETTINGS)
                if k == 0 or not wanted or any(w in item[0] for w in wanted)]
    audio_clips = clips(args.quick)
    engines: dict[int, FasterWhisperEngine] = {}
    for _, _, _, threads in settings:
        if threads not in engines:
            engines[threads] = FasterWhisperEngine(EngineConfig(
                model="tiny.en", cpu_threads=threads, language="en"))
            engines[threads].load()
            engines[threads].transcribe(audio_clips[0][1])  # warm up
    # Settings take turns on every clip and repeat, so a change in the machine's load
    # (other jobs) hits every setting alike instead of whichever ran at the time.
    times: dict[tuple[int, str], list[float]] = {}
    texts: dict[tuple[int, str], str] = {}
    for name, audio, _, _ in audio_clips:
        for _ in range(args.repeats):
            for k, (_, kind, hints, threads) in enumerate(settings):
                started = time.perf_counter()
                out = engines[threads].transcribe(audio, kind=kind,  # type: ignore[arg-type]
                                                  hints=hints)
                times.setdefault((k, name), []).append(time.perf_counter() - started)
                texts[k, name] = out.text
        print(f"  done: {name}", file=sys.stderr, flush=True)

    def wer(k: int, chosen: list[tuple[str, np.ndarray, str, bool]], human: bool) -> float:
        counts = [word_errors(ref, texts[k, name])
                  for name, _, ref, is_human in chosen if is_human == human]
        total = sum(n for _, n in counts)
        return sum(e for e, _ in counts) / total if total else float("nan")

    print(f"{'setting':44s} {'audio':>9s} {'median ms':>10s} {'WER human':>10s} "
          f"{'WER espeak':>11s}")
    for k, (label, _, _, _) in enumerate(settings):
        for lo, hi in BUCKETS:
            chosen = [c for c in audio_clips if lo <= len(c[1]) / 16000 < hi]
            if not chosen:
                continue
            ms = statistics.median(t for c in chosen for t in times[k, c[0]]) * 1000
            print(f"{label:44s} {f'{lo:g}-{hi:g} s':>9s} {ms:10.0f} "
                  f"{wer(k, chosen, True):10.3f} {wer(k, chosen, False):11.3f}")
    print(f"\n{'setting (all clips)':44s} {'x plain':>9s} {'WER human':>10s} "
          f"{'WER espeak':>11s} {'WER all':>8s}")
    for k, (label, _, _, _) in enumerate(settings):
        ratio = statistics.median(statistics.median(times[k, c[0]]) /
                                  statistics.median(times[0, c[0]]) for c in audio_clips)
        counts = [word_errors(ref, texts[k, name]) for name, _, ref, _ in audio_clips]
        overall = sum(e for e, _ in counts) / sum(n for _, n in counts)
        print(f"{label:44s} {ratio:9.2f} {wer(k, audio_clips, True):10.3f} "
              f"{wer(k, audio_clips, False):11.3f} {overall:8.3f}")
    for eng in engines.values():
        eng.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
