"""The ``harken`` command: transcribe files, listen to the microphone, list devices.

This is the only module that configures logging or prints. It parses arguments, builds a
:class:`~harken.config.RecorderConfig` and calls the same API users import.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from ..config import WakeConfig
from ..errors import HarkenError
from ..formats import FORMATS, render
from .options import add_engine_args

__all__ = ["build_parser", "main", "sample_path"]

_LOG = logging.getLogger("harken.cli")


def sample_path() -> Path:
    """Path of the short recording shipped with harken (16 kHz mono WAV)."""
    return Path(__file__).resolve().parent.parent / "data" / "sample.wav"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="harken", description="Real-time speech-to-text.")
    parser.add_argument("--log-level", default="WARNING",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("transcribe", help="transcribe audio files")
    t.add_argument("files", nargs="*", type=Path, help="audio files (WAV, FLAC, OGG, ...)")
    t.add_argument("--sample", action="store_true",
                   help="transcribe the short recording shipped with harken")
    t.add_argument("-f", "--format", default="text", choices=FORMATS)
    t.add_argument("-o", "--output-dir", type=Path, default=None,
                   help="write <name>.<format> files here instead of printing")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_engine_args(t)

    ls = sub.add_parser("listen", help="transcribe the microphone live")
    ls.add_argument("--input-device", default=None,
                    help="input device index or name (see 'harken devices')")
    ls.add_argument("--json", action="store_true", help="print one JSON event per line")
    ls.add_argument("--no-partials", action="store_true",
                    help="show only final text (no live partial text)")
    wake = WakeConfig()
    w = ls.add_argument_group("wake word")
    w.add_argument("--wake-word", default=None, metavar="WORDS",
                   help="transcribe only what follows this wake word or phrase, e.g. jarvis or "
                        "'hey harken' (comma-separated for several)")
    w.add_argument("--wake-backend", default=wake.backend,
                   help="phrase (any phrase, uses the loaded model; default), porcupine "
                        "(built-in keywords such as jarvis, computer) or openwakeword "
                        "(hey_jarvis, alexa, ...)")
    w.add_argument("--wake-sensitivity", type=float, default=wake.sensitivity,
                   help="0..1: higher detects more and false-triggers more "
                        f"(default {wake.sensitivity})")
    w.add_argument("--wake-timeout", type=float, default=wake.timeout_s, metavar="SECONDS",
                   help=f"after the wake word, wait this long for speech (default "
                        f"{wake.timeout_s:g})")
    add_engine_args(ls)

    sub.add_parser("devices", help="list audio input devices")
    from . import client, phone, say, serve, stt_server  # aiohttp, pjsua2: only when run

    serve.add_parser(sub)
    client.add_parser(sub)
    say.add_parser(sub)
    stt_server.add_parser(sub)
    phone.add_parser(sub)
    return parser


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return dict(model=args.model, language=args.language, device=args.device,
                languages=args.languages, numerals=args.numerals,
                compute_type=args.compute_type, beam_size=args.beam_size, engine=args.engine,
                vad=args.vad, post_speech_silence_ms=args.silence_ms,
                turn_detection=args.turn)


class _Progress:
    """A progress bar over seconds of audio (tqdm when installed, else nothing)."""

    def __init__(self, total_s: float, label: str, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=round(total_s, 1), desc=label, unit="s", file=sys.stderr,
                             leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                             "{n:.0f}/{total:.0f} s [{elapsed}<{remaining}]")

    def update(self, position_s: float) -> None:
        if self._bar is not None:
            self._bar.n = min(round(position_s, 1), self._bar.total)
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _transcribe(args: argparse.Namespace) -> int:
    from ..files import transcribe_file
    from ..sources.file import FileSource

    files = list(args.files)
    if args.sample:
        files.insert(0, sample_path())
    if not files:
        print("harken transcribe: give one or more audio files, or --sample", file=sys.stderr)
        return 2
    for path in files:
        if not path.is_file():
            print(f"harken transcribe: no such file: {path}", file=sys.stderr)
            return 2
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    show_progress = not args.no_progress and sys.stderr.isatty()
    for path in files:
        progress = _Progress(FileSource(str(path)).duration_s, path.name, show_progress)
        try:
            finals = transcribe_file(path, on_progress=progress.update, **_settings(args))
        finally:
            progress.close()
        text = render(finals, args.format)
        if args.output_dir is not None:
            out = args.output_dir / f"{path.stem}.{'txt' if args.format == 'text' else args.format}"
            out.write_text(text, encoding="utf-8")
            print(f"{path} -> {out}", file=sys.stderr)
        else:
            if len(files) > 1 and args.format == "text":
                print(f"== {path}")
            sys.stdout.write(text)
            sys.stdout.flush()
    return 0


def _listen_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = _settings(args)
    settings["partials"] = not args.no_partials
    if args.wake_word:
        settings.update(wake_words=args.wake_word, wake_backend=args.wake_backend,
                        wake_sensitivity=args.wake_sensitivity,
                        wake_timeout_s=args.wake_timeout)
    return settings


def _listen(args: argparse.Namespace) -> int:
    import json

    from ..events import (
        ErrorEvent,
        Event,
        FinalTranscript,
        PartialTranscript,
        SpeechStarted,
        WakeWordDetected,
        WakeWordTimeout,
        WakeWordWaiting,
    )
    from ..recorder import Recorder

    device: int | str | None = args.input_device
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    tty = sys.stdout.isatty()
    dim, reset, clear = ("\033[2m", "\033[0m", "\r\033[K") if tty else ("", "", "")

    def on_event(event: Event) -> None:
        if args.json:
            print(json.dumps(event.to_dict()), flush=True)
        elif isinstance(event, FinalTranscript):
            if event.text:
                print(clear + event.text, flush=True)
            elif tty:
                print(clear, end="", flush=True)
        elif isinstance(event, PartialTranscript) and tty:
            # Stable words in normal colour, words that may still change dimmed, in place.
            print(f"{clear}{event.stable} {dim}{event.unstable}{reset}", end="", flush=True)
        elif isinstance(event, SpeechStarted) and tty:
            print(f"{clear}{dim}(listening...){reset}", end="", flush=True)
        elif isinstance(event, WakeWordWaiting) and tty:
            print(f"{clear}{dim}(say '{args.wake_word}'){reset}", end="", flush=True)
        elif isinstance(event, WakeWordDetected):
            print(f"{clear}{dim}({event.word}: listening...){reset}", end="" if tty else "\n",
                  flush=True)
        elif isinstance(event, WakeWordTimeout) and tty:
            print(f"{clear}{dim}(nothing said){reset}", flush=True)
        elif isinstance(event, ErrorEvent):
            print(f"error: {event.error}", file=sys.stderr, flush=True)

    settings = _listen_settings(args)
    rec = Recorder(source="mic", input_device=device, on_event=on_event, **settings)
    try:
        rec.start()
        print("Listening; press Ctrl+C to stop.", file=sys.stderr, flush=True)
        while rec.state.value != "closed":
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        rec.close(timeout=1.0)
    return 0


def _devices() -> int:
    from ..sources.devices import list_input_devices

    devices = list_input_devices()
    if not devices:
        print("no audio input devices found")
        return 1
    for d in devices:
        mark = "*" if d.get("is_default") else " "
        print(f"{mark} {d['index']:>3}  {d['name']}  ({d['channels']} ch, "
              f"{d['default_samplerate']:.0f} Hz)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "transcribe":
            return _transcribe(args)
        if args.command == "listen":
            return _listen(args)
        if args.command in ("serve", "client", "say", "stt-server", "phone"):
            return int(args.run(args))
        return _devices()
    except HarkenError as exc:
        print(f"harken: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
