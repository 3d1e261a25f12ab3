"""``harken client``: stream a file or the microphone to a harken server and print the text.

``harken client FILE`` decodes the file (:func:`~harken.sources.file.decode_audio`) and
sends it as 16-bit PCM at its own sample rate in chunks of ``--chunk-ms``, paced at real
time (``--speed`` changes the pace; 0 sends as fast as possible). ``harken client --mic``
records the microphone (:class:`~harken.sources.microphone.MicrophoneSource`, 16 kHz) until
Ctrl+C. Either way the command then sends "stop" and prints the server's messages until
"stopped"; a second Ctrl+C quits at once. A lost connection is resumed (``--reconnect``,
``--replay``: :mod:`harken.cli.stream_client`). ``--token`` (or ``HARKEN_TOKEN``) is sent as
``Authorization: Bearer <token>``.

Threads: an asyncio loop on the main thread (aiohttp's WebSocket client, the ``server``
extra). With ``--mic``, the microphone's "harken-mic" thread converts each block to PCM
and hands it to the loop through a bounded queue (full: the block is dropped and counted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BackendNotInstalled, HarkenError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["add_parser", "run"]

_MIC_QUEUE = 200
"""Microphone blocks waiting for the socket before blocks are dropped (~6 s of 32 ms)."""


def add_parser(subparsers: Any) -> None:
    """Add the ``client`` command to the ``harken`` argument parser."""
    c = subparsers.add_parser("client", help="stream an audio file or the microphone to a "
                              "harken server",
                              description="Stream a file (at real-time pace) or the microphone "
                              "(until Ctrl+C) to 'harken serve' and print partial and final "
                              "text.")
    c.add_argument("file", type=Path, nargs="?",
                   help="audio file (WAV; FLAC, OGG, MP3 with soundfile); or use --mic")
    c.add_argument("--mic", action="store_true",
                   help="stream the microphone instead of a file, until Ctrl+C")
    c.add_argument("--input-device", default=None,
                   help="with --mic: input device index or name (see 'harken devices')")
    c.add_argument("--url", default="ws://127.0.0.1:8765/v1/stream",
                   help="the server's WebSocket URL (default ws://127.0.0.1:8765/v1/stream)")
    c.add_argument("--token", default=None,
                   help="the server's token (harken serve --token); default: the "
                   "HARKEN_TOKEN environment variable")
    c.add_argument("--speed", type=float, default=1.0,
                   help="file pace relative to real time (default 1; 0: as fast as possible)")
    c.add_argument("--chunk-ms", type=int, default=100, help="file audio per message, in ms")
    c.add_argument("--language", default=None, help="language code for the engine")
    c.add_argument("--no-partials", action="store_true", help="ask for final text only")
    c.add_argument("--json", action="store_true", help="print every server message as JSON")
    c.add_argument("--reconnect", type=float, default=30.0, metavar="S",
                   help="when the connection is lost (e.g. the server drains behind a load "
                   "balancer), keep reconnecting for S seconds and send again the audio "
                   "since the last final (default 30; 0: never)")
    c.add_argument("--replay", type=float, default=30.0, metavar="S",
                   help="the most audio kept for sending again after a reconnect, in seconds "
                   "(default 30)")
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


async def _file_audio(args: argparse.Namespace, audio: NDArray[np.float32], rate: int,
                      stop: asyncio.Event) -> AsyncGenerator[bytes, None]:
    """The file as pcm16 chunks, paced at ``args.speed`` times real time, until ``stop``."""
    from ..audio.convert import float32_to_pcm16

    step = max(1, rate * args.chunk_ms // 1000)
    started = time.monotonic()
    for i in range(0, len(audio), step):
        if stop.is_set():
            return
        yield bytes(float32_to_pcm16(audio[i:i + step]))
        if args.speed > 0:
            due = started + (i + step) / rate / args.speed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, due - time.monotonic()))


class _MicSink:
    """Takes the microphone's 16 kHz blocks on "harken-mic" and queues them on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)
        self.dropped = 0
        """Blocks dropped because the socket fell behind."""
        self.failure: BaseException | None = None

    def _put(self, item: bytes | None) -> None:  # on the loop
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            if item is None:  # the end marker must get through: drop the oldest block
                self.queue.get_nowait()
                self.queue.put_nowait(None)
            else:
                self.dropped += 1

    def _call(self, item: bytes | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening
            self._loop.call_soon_threadsafe(self._put, item)

    def write(self, samples: NDArray[np.float32]) -> None:
        from ..audio.convert import float32_to_pcm16

        self._call(bytes(float32_to_pcm16(samples)))

    def end(self) -> None:
        self._call(None)

    def error(self, exc: BaseException) -> None:
        self.failure = exc
        self._call(None)


async def _mic_audio(args: argparse.Namespace, sink: _MicSink,
                     stop: asyncio.Event) -> AsyncGenerator[bytes, None]:
    """Microphone pcm16 at 16 kHz until ``stop`` (Ctrl+C) or the device fails."""
    from ..sources.microphone import MicrophoneSource

    device: int | str | None = args.input_device
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    source = MicrophoneSource(device)
    await asyncio.to_thread(source.start, sink)
    print("harken client: streaming the microphone; press Ctrl+C to stop", file=sys.stderr,
          flush=True)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            getting = asyncio.ensure_future(sink.queue.get())
            await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not getting.done():
                getting.cancel()
                break
            chunk = getting.result()
            if chunk is None:
                break
            yield chunk
        await asyncio.to_thread(source.close)
        while not sink.queue.empty():  # what was recorded before Ctrl+C still goes out
            chunk = sink.queue.get_nowait()
            if chunk is not None:
                yield chunk
    finally:
        stopping.cancel()
        await asyncio.to_thread(source.close)
        if sink.dropped:
            print(f"harken client: {sink.dropped} microphone blocks were dropped (the "
                  "connection was too slow)", file=sys.stderr, flush=True)


async def _session(args: argparse.Namespace, start: Any, audio: AsyncGenerator[bytes, None],
                   token: str | None) -> int:
    """Stream with reconnection (:class:`~harken.cli.stream_client.ReconnectingStream`)."""
    import aiohttp

    from .stream_client import ReconnectingStream

    tty = sys.stdout.isatty()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    stream = ReconnectingStream(
        args.url, start, audio, headers=headers, as_json=args.json,
        show=lambda message, raw: _print(message, raw, args.json, tty),
        reconnect_s=args.reconnect, replay_s=args.replay)
    try:
        async with contextlib.aclosing(audio):
            stopped = await stream.run()
    except aiohttp.WSServerHandshakeError as exc:
        if exc.status == 401:
            why = ("the token was refused" if token else
                   "it needs a token: pass --token or set HARKEN_TOKEN")
            print(f"harken client: the server refused the connection: {why}",
                  file=sys.stderr)
        else:
            print(f"harken client: the server refused the connection: HTTP {exc.status} "
                  f"{exc.message}", file=sys.stderr)
        return 1
    except aiohttp.ClientConnectionError as exc:
        print(f"harken client: cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 1
    if not stopped:
        print("harken client: the server closed the connection", file=sys.stderr)
        return 1
    return 1 if stream.failed else 0


async def _stream(args: argparse.Namespace) -> int:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise BackendNotInstalled("aiohttp", "server", "harken client") from None
    from ..server import protocol as p

    token = args.token or os.environ.get("HARKEN_TOKEN") or None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_sigint() -> None:
        # The first Ctrl+C finishes the stream (the last finals still arrive); the default
        # handler comes back, so a second one quits at once.
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C quits at once
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        if args.mic:
            sink = _MicSink(loop, _MIC_QUEUE)
            start = p.Start(16000, "pcm16", 1, args.language, not args.no_partials)
            status = await _session(args, start, _mic_audio(args, sink, stop), token)
            if sink.failure is not None:
                raise sink.failure
            return status
        from ..sources.file import decode_audio

        audio, rate = await asyncio.to_thread(decode_audio, args.file)
        start = p.Start(rate, "pcm16", 1, args.language, not args.no_partials)
        return await _session(args, start, _file_audio(args, audio, rate, stop), token)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)


def run(args: argparse.Namespace) -> int:
    """Stream ``args.file`` or the microphone to the server; return the exit status."""
    if args.mic == (args.file is not None):
        print("harken client: give an audio file or --mic (one of them)", file=sys.stderr)
        return 2
    if args.file is not None and not args.file.is_file():
        print(f"harken client: no such file: {args.file}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_stream(args))
    except HarkenError as exc:
        print(f"harken client: {exc}", file=sys.stderr)
        return 1
