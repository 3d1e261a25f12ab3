"""Soak test: stream N minutes of audio through a Recorder faster than real time and watch
for leaks.

The audio alternates 1.5 s tone bursts (each one utterance) with 1.5 s of silence; the
energy VAD segments it and the scripted engine answers in the engine process, so everything
but the model is the real thing: push source, inbox, pipeline thread, worker protocol,
dispatcher. After every minute of audio it samples the parent's resident memory (RSS), its
thread count, its open file descriptors and its live child processes, and at the end it
prints the memory slope in MB per hour of audio (least squares, first sample excluded as
warm-up) and checks that every burst got exactly one final.

Runs on the main thread of this script; the recorder's threads are its own.

With ``--real`` the audio is espeak-ng speech (sentences with 1.5 s gaps) and everything is
the real thing: the default WebRTC+Silero VAD and the embedded tiny.en model. It runs at
about 3-4x real time on 2 cores, so an hour takes 15-20 minutes.

Usage: python benchmarks/soak.py [--minutes 60] [--real]
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil
from machine_info import machine

from harken.events import FinalTranscript
from harken.recorder import Recorder
from harken.testing import silence, tone

RATE = 16000
"""Sample rate of the generated audio, in Hz."""
CHUNK = 1600
"""Samples per feed_audio() call (100 ms)."""
BURST_S = 1.5
GAP_S = 1.5


@dataclass
class Sample:
    """One measurement, taken after each minute of audio was fed."""

    audio_minutes: float
    rss_mb: float
    threads: int
    fds: int
    children: int
    finals: int


@dataclass
class SoakResult:
    """What a soak run measured."""

    minutes: float
    wall_s: float
    utterances: int
    finals_by_id: dict[int, int]
    samples: list[Sample] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Bursts with no final."""
        return sum(1 for i in range(1, self.utterances + 1) if i not in self.finals_by_id)

    @property
    def duplicated(self) -> int:
        """Extra finals for bursts that got more than one."""
        return sum(n - 1 for n in self.finals_by_id.values() if n > 1)

    @property
    def speed(self) -> float:
        """Audio seconds per wall-clock second (x real time)."""
        return self.minutes * 60 / self.wall_s

    def rss_slope_mb_per_hour(self) -> float:
        """Least-squares slope of RSS in MB per hour of audio, first sample excluded."""
        points = self.samples[1:] if len(self.samples) > 2 else self.samples
        if len(points) < 2:
            return 0.0
        x = np.array([s.audio_minutes / 60 for s in points])
        y = np.array([s.rss_mb for s in points])
        return float(np.polyfit(x, y, 1)[0])


def minute_of_audio(minute: int) -> np.ndarray:
    """60 s of alternating bursts and silence; the pitch changes each minute (Hz)."""
    cycle = np.concatenate([tone(BURST_S, 200.0 + 10 * (minute % 20)), silence(GAP_S)])
    reps = int(round(60 / (BURST_S + GAP_S)))
    return np.tile(cycle, reps)


_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "We will meet at the station at half past nine tomorrow morning.",
    "Turn left at the second traffic light and then keep going straight.",
    "The weather today is cold and windy with a chance of rain.",
    "Please send the report to the whole team before Friday.",
    "My favourite book has a green cover and a very long title.",
    "It takes about twenty minutes to walk from here to the museum.",
    "The children played football in the park until it got dark.",
]


def speech_minute(minute: int) -> tuple[np.ndarray, int]:
    """About 60 s of espeak sentences with 1.5 s gaps, and how many utterances it holds."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import _espeak  # the tests' cached espeak-ng speech

    parts, n, total = [], 0, 0
    while total < 60 * RATE:
        speech = _espeak(_SENTENCES[(minute * 7 + n) % len(_SENTENCES)])
        parts += [speech, silence(GAP_S)]
        total += len(speech) + int(GAP_S * RATE)
        n += 1
    return np.concatenate(parts), n


def _sample(proc: psutil.Process, audio_minutes: float, finals: int) -> Sample:
    children = [c for c in proc.children(recursive=True)
                if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    return Sample(audio_minutes=audio_minutes, rss_mb=proc.memory_info().rss / 2**20,
                  threads=threading.active_count(), fds=proc.num_fds(),
                  children=len(children), finals=finals)


def run_soak(minutes: float, *, on_sample: object = None, real: bool = False) -> SoakResult:
    """Stream ``minutes`` of audio through a Recorder as fast as it takes it.

    Args:
        minutes: minutes of audio to stream (whole minutes; at least 1).
        on_sample: optional callable taking each :class:`Sample` as it is measured.
        real: espeak speech through the real VAD and model instead of tone bursts through
            the energy VAD and the scripted engine.

    Returns:
        The measurements and the count of finals per utterance id.
    """
    whole = max(1, int(minutes))
    per_minute = int(round(60 / (BURST_S + GAP_S)))
    finals_by_id: dict[int, int] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def on_event(event: object) -> None:
        if isinstance(event, FinalTranscript):
            with lock:
                finals_by_id[event.utterance_id] = finals_by_id.get(event.utterance_id, 0) + 1

    proc = psutil.Process()
    result = SoakResult(minutes=whole, wall_s=0.0, utterances=whole * per_minute,
                        finals_by_id=finals_by_id, errors=errors)
    t0 = time.monotonic()
    settings = {} if real else {"engine": "scripted", "vad": "energy"}
    if real:
        result.utterances = 0
    with Recorder(source="push", on_event=on_event, on_error=errors.append,
                  **settings) as rec:
        result.samples.append(_sample(proc, 0.0, 0))
        for minute in range(whole):
            if real:
                audio, count = speech_minute(minute)
                result.utterances += count
            else:
                audio = minute_of_audio(minute)
            for i in range(0, len(audio), CHUNK):
                rec.feed_audio(audio[i:i + CHUNK])
            # Like a user would: take the finals that arrived, so none pile up.
            while True:
                try:
                    rec.next_final(timeout=0)
                except TimeoutError:
                    break
            sample = _sample(proc, minute + 1.0, rec.finals)
            result.samples.append(sample)
            if callable(on_sample):
                on_sample(sample)
        rec.flush(120)
    result.wall_s = time.monotonic() - t0
    return result


def main() -> int:
    """Run the soak and print the figures; exit status 1 when an utterance was lost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60, help="minutes of audio (default 60)")
    parser.add_argument("--real", action="store_true",
                        help="espeak speech, real VAD and the tiny.en model")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print("audio: " + ("espeak speech, webrtc+silero VAD, tiny.en" if args.real else
                       "tone bursts, energy VAD, scripted engine"))
    print(f"{'audio min':>9} {'RSS MB':>8} {'threads':>7} {'fds':>5} {'children':>8} "
          f"{'finals':>7}")

    def show(s: Sample) -> None:
        print(f"{s.audio_minutes:9.0f} {s.rss_mb:8.1f} {s.threads:7d} {s.fds:5d} "
              f"{s.children:8d} {s.finals:7d}", flush=True)

    result = run_soak(args.minutes, on_sample=show, real=args.real)
    rss = [s.rss_mb for s in result.samples[1:]]
    print(f"audio: {result.minutes} min in {result.wall_s:.1f} s wall "
          f"({result.speed:.0f}x real time)")
    print(f"utterances: {result.utterances}, finals: {sum(result.finals_by_id.values())}, "
          f"lost: {result.lost}, duplicated: {result.duplicated}, "
          f"errors: {len(result.errors)}")
    print(f"RSS: {min(rss):.1f}..{max(rss):.1f} MB; slope "
          f"{result.rss_slope_mb_per_hour():+.2f} MB per audio hour")
    threads = [s.threads for s in result.samples[1:]]
    fds = [s.fds for s in result.samples[1:]]
    children = [s.children for s in result.samples[1:]]
    print(f"threads: {min(threads)}..{max(threads)}, fds: {min(fds)}..{max(fds)}, "
          f"children: {min(children)}..{max(children)}")
    return 1 if result.lost or result.duplicated else 0


if __name__ == "__main__":
    raise SystemExit(main())
