"""``harken client FILE --url ws://...``: stream a file to a harken server and print events.

The file is decoded (soundfile, or the standard library for WAV), sent as 16-bit PCM at its
own sample rate in chunks of ``--chunk-ms``, paced at real time (``--speed`` changes the
pace; 0 sends as fast as possible), then "stop"; the command prints the server's messages
until "stopped". It uses aiohttp's WebSocket client (the ``server`` extra) on an asyncio loop
on the main thread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import BackendNotInstalled

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add the ``client`` command to the ``harken`` argument parser."""
    c = subparsers.add_parser("client", help="stream an audio file to a harken server",
                              description="Stream a file to 'harken serve' at real-time "
                              "pace and print partial and final text.")
    c.add_argument("file", type=Path, help="audio file (WAV; FLAC, OGG, MP3 with soundfile)")
    c.add_argument("--url", default="ws://127.0.0.1:8765/v1/stream",
                   help="the server's WebSocket URL (default ws://127.0.0.1:8765/v1/stream)")
    c.add_argument("--speed", type=float, default=1.0,
                   help="pace relative to real time (default 1; 0: as fast as possible)")
    c.add_argument("--chunk-ms", type=int, default=100, help="audio per message, in ms")
    c.add_argument("--language", default=None, help="language code for the engine")
    c.add_argument("--no-partials", action="store_true", help="ask for final text only")
    c.add_argument("--json", action="store_true", help="print every server message as JSON")
    c.set_defaults(run=run)


def _print(message: Any, raw: str, as_json: bool, tty: bool) -> None:
    from ..server import protocol as p

    clear = "\r\033[K" if tty else ""
    if as_json:
        print(raw, flush=True)
    elif isinstance(message, p.Final):
        if message.text:
            print(f"{clear}[{message.start:7.2f} - {message.end:7.2f}] {message.text}",
                  flush=True)
    elif isinstance(message, p.Partial) and tty:
        print(f"{clear}{message.stable} \033[2m{message.unstable}\033[0m", end="", flush=True)
    elif isinstance(message, p.Error):
        print(f"{clear}server error ({message.code}): {message.message}", file=sys.stderr,
              flush=True)


async def _stream(args: argparse.Namespace) -> int:
    try:
        import aiohttp
    except ImportError:
        raise BackendNotInstalled("aiohttp", "server", "harken client") from None
    from ..audio.convert import float32_to_pcm16
    from ..server import protocol as p
    from ..server.openai_api import decode_audio

    audio, rate = await asyncio.to_thread(decode_audio, args.file.read_bytes())
    tty = sys.stdout.isatty()
    step = max(1, rate * args.chunk_ms // 1000)
    failed = False
    async with aiohttp.ClientSession() as http, http.ws_connect(args.url) as ws:
        await ws.send_str(p.encode(p.Start(rate, "pcm16", 1, args.language,
                                           not args.no_partials)))

        async def reader() -> bool:
            nonlocal failed
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                message = p.parse_server(msg.data)
                _print(message, msg.data, args.json, tty)
                if isinstance(message, p.Error):
                    failed = True
                if isinstance(message, p.Stopped):
                    return True
            return False

        reading = asyncio.ensure_future(reader())
        started = time.monotonic()
        try:
            for i in range(0, len(audio), step):
                if reading.done() or ws.closed:
                    break
                await ws.send_bytes(bytes(float32_to_pcm16(audio[i:i + step])))
                if args.speed > 0:
                    due = started + (i + step) / rate / args.speed
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not ws.closed and not reading.done():
                await ws.send_str(json.dumps({"type": "stop"}))
            stopped = await reading
        finally:
            if not reading.done():
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
    if not stopped:
        print("harken client: the server closed the connection", file=sys.stderr)
        return 1
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    """Stream ``args.file`` to the server; return the exit status."""
    if not args.file.is_file():
        print(f"harken client: no such file: {args.file}", file=sys.stderr)
        return 2
    return asyncio.run(_stream(args))
