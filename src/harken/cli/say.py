"""``harken say``: speak text on the sound card, or into a WAV file.

``harken say "Hello there."`` plays it; ``-o out.wav`` writes it instead; ``harken say -``
speaks each line of standard input as soon as it arrives (a pipe from another program).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add the ``say`` command to the ``harken`` argument parser."""
    s = subparsers.add_parser(
        "say", help="speak text (on the sound card, or into a WAV file)",
        description="Speak text with a local voice (Piper if installed, else espeak-ng).")
    s.add_argument("text", help="the text to speak; '-' reads standard input, one line "
                   "spoken as soon as it arrives")
    s.add_argument("-o", "--output", type=Path, default=None,
                   help="write a WAV file instead of playing")
    s.add_argument("--voice", default=None,
                   help="voice name (Piper: en_US-joe-medium or a .onnx path; espeak-ng: "
                   "en-us, de, fr, ...)")
    s.add_argument("--engine", default=None,
                   help="piper, espeak, or package.module:Class (default: the best installed)")
    s.add_argument("--speed", type=float, default=1.0, help="speaking rate (default 1.0)")
    s.add_argument("--rate", type=int, default=None,
                   help="output sample rate in Hz (8000, 16000, 22050, 24000, 48000)")
    s.add_argument("--output-device", default=None,
                   help="output device index (see 'python -m sounddevice')")
    s.set_defaults(run=run)


def _lines() -> Iterator[str]:
    for line in sys.stdin:
        yield line if line.endswith("\n") else line + "\n"


def run(args: argparse.Namespace) -> int:
    """Speak ``args.text``; return the exit status."""
    from ..speak.speaker import Speaker

    sink: object = "device"
    if args.output is not None:
        sink = args.output
    elif args.output_device is not None:
        sink = int(args.output_device) if str(args.output_device).isdigit() else "device"
    with Speaker(args.voice, engine=args.engine, speed=args.speed, sample_rate=args.rate,
                 sink=sink) as speaker:
        report = speaker.say(_lines() if args.text == "-" else args.text)
    if args.output is not None:
        print(f"wrote {args.output} ({report.delivered_s:.2f} s)", file=sys.stderr)
    return 0
