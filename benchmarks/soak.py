"""Soak test: stream N minutes of audio through a Recorder faster than real time and watch
for leaks.

It runs harken.testing.soak, as tests/integration/test_soak.py does for 20 minutes. The
audio alternates 1.5 s tone bursts (each one utterance) with 1.5 s of silence; the
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
from pathlib import Path

import numpy as np
from machine_info import machine

from harken.testing import GAP_S, SoakSample, silence, soak

RATE = 16000
"""Sample rate of the generated audio, in Hz."""


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

    def show(s: SoakSample) -> None:
        print(f"{s.audio_minutes:9.0f} {s.rss_mb:8.1f} {s.threads:7d} {s.fds:5d} "
              f"{s.children:8d} {s.finals:7d}", flush=True)

    if args.real:  # the default VAD and model
        result = soak(args.minutes, audio=speech_minute, on_sample=show)
    else:
        result = soak(args.minutes, on_sample=show, engine="scripted", vad="energy")
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
