"""``harken serve``: run the speech-to-text server until SIGINT or SIGTERM.

Runs :class:`~harken.server.app.Server` on an asyncio loop on the main thread. SIGINT and
SIGTERM start a graceful shutdown: in-flight finals are finished (up to
``--drain-timeout`` seconds), then every client is closed and the engine processes stopped.
When every engine fails for good (their restarts with back-off all failed), the server drains
the same way and the command exits with :data:`ENGINE_FAILED`, so a supervisor (systemd,
Kubernetes) restarts it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from dataclasses import replace
from typing import Any

from ..server.config import OPENAI_REALTIME, ServerConfig
from ..server.engine_pool import CORES_PER_ENGINE, cpu_cores, pool_size
from .options import add_engine_args, engine_config, vad_config

__all__ = ["ENGINE_FAILED", "add_parser", "run", "serve"]

ENGINE_FAILED = 3
"""Exit status when the speech engine failed for good (its restarts all failed)."""


def add_parser(subparsers: Any) -> None:
    """Add the ``serve`` command to the ``harken`` argument parser."""
    server = ServerConfig()
    s = subparsers.add_parser(
        "serve", help="run the server (WebSocket streaming, OpenAI-compatible HTTP)",
        description="Serve real-time speech-to-text to many clients sharing one model.")
    s.add_argument("--host", default=server.host,
                   help=f"interface to bind (default {server.host}: this machine only)")
    s.add_argument("--port", type=int, default=server.port,
                   help=f"TCP port (default {server.port}; 0: any)")
    s.add_argument("--max-sessions", type=int, default=server.max_sessions,
                   help=f"clients at once; more get 'server busy' (default {server.max_sessions})")
    s.add_argument("--max-audio-rate", type=float, default=server.max_audio_rate, metavar="X",
                   help="refuse clients sending audio faster than X times real time, after "
                   f"{server.audio_burst_s:g} s of slack (default {server.max_audio_rate:g}; "
                   "0: no limit)")
    s.add_argument("--fast-finals-at", type=int, default=server.fast_finals_at or 0, metavar="N",
                   help="when N other finals wait for or are in the engine, a final takes "
                   "its cheaper greedy pass to keep up; 0: never "
                   f"(default {server.fast_finals_at or 0})")
    s.add_argument("--engines", type=int, default=server.engines, metavar="N",
                   help="engine processes sharing the work, each with its own copy of the "
                   "model; one crashing moves its work to the others (default 0: one per "
                   f"{CORES_PER_ENGINE} CPU cores, at least two on 2 or more cores; here "
                   f"{pool_size(cores=cpu_cores())[0]})")
    s.add_argument("--engine-threads", type=int, default=server.engine_threads, metavar="T",
                   help="CPU threads per engine (default 0: the cores divided by the "
                   "engines, so engines x threads does not oversubscribe the CPU)")
    s.add_argument("--drain-timeout", type=float, default=server.drain_timeout_s,
                   help=f"seconds to finish in-flight finals on shutdown (default "
                        f"{server.drain_timeout_s:g})")
    s.add_argument("--token", default=None,
                   help="require 'Authorization: Bearer TOKEN' (or ?token= on WebSockets) on "
                   "every route but / and /health (visible to other users in 'ps': prefer "
                   "--token-file or the HARKEN_TOKEN environment variable); default: "
                   "HARKEN_TOKEN, else no token")
    s.add_argument("--token-file", default=None, metavar="PATH",
                   help="read the token from this file (its first line)")
    limits = s.add_argument_group("limits against hostile clients")
    limits.add_argument("--max-upload-seconds", type=float,
                        default=server.max_upload_seconds, metavar="S",
                        help="the longest audio file POST /v1/audio/transcriptions accepts, "
                        f"in seconds (default {server.max_upload_seconds:g})")
    limits.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="a browser origin (e.g. https://app.example) allowed to open "
                        "WebSockets and post uploads besides the server's own page; "
                        "repeat for more; '*': any")
    limits.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a host name the server answers to besides its address, "
                        "localhost and IP addresses (DNS-rebinding guard); '*': any")
    limits.add_argument("--max-connections", type=int, default=server.max_connections,
                        metavar="N", help="open connections at once, all ports (default "
                        f"{server.max_connections}, lowered to fit the open-file limit)")
    limits.add_argument("--max-connections-per-address", type=int,
                        default=server.max_connections_per_address, metavar="N",
                        help="WebSocket connections one client address may hold (default "
                        f"{server.max_connections_per_address})")
    limits.add_argument("--header-timeout", type=float, default=server.header_timeout_s,
                        metavar="S", help="seconds to send a request's headers, and to idle "
                        f"between keep-alive requests (default {server.header_timeout_s:g})")
    limits.add_argument("--admit-timeout", type=float, default=server.admit_timeout_s,
                        metavar="S", help="seconds a WebSocket client has to send a valid "
                        f"start (default {server.admit_timeout_s:g})")
    limits.add_argument("--idle-timeout", type=float, default=server.idle_timeout_s,
                        metavar="S", help="seconds a streaming WebSocket may send nothing "
                        f"(default {server.idle_timeout_s:g})")
    add_engine_args(s)
    s.add_argument("--no-partials", action="store_true", help="send no live partial text")
    s.add_argument("--rtstt-ports", type=_port_pair, default=None, metavar="CONTROL,DATA",
                   help="also serve RealtimeSTT's protocol at / on these two ports, e.g. "
                   "8011,8012 (its client's defaults)")
    s.add_argument("--speech-engine", default=None,
                   help="voice engine of POST /v1/audio/speech: piper, espeak, or "
                   "package.module:Class (default: the best installed)")
    s.add_argument("--speech-voice", default=None,
                   help="its default voice (OpenAI's voice names map to it)")
    s.set_defaults(run=run)


def _port_pair(text: str) -> tuple[int, int]:
    """Parse ``--rtstt-ports`` ("8011,8012")."""
    try:
        control, data = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected two ports like 8011,8012, got {text!r}") from None
    return control, data


def _config(args: argparse.Namespace) -> Any:
    from ..config import RealtimeConfig

    return ServerConfig(host=args.host, port=args.port, engine=engine_config(args),
                        vad=vad_config(args),
                        realtime=RealtimeConfig(partials=not args.no_partials),
                        openai_realtime=replace(OPENAI_REALTIME,
                                                partials=not args.no_partials),
                        max_sessions=args.max_sessions, drain_timeout_s=args.drain_timeout,
                        engines=args.engines, engine_threads=args.engine_threads,
                        fast_finals_at=args.fast_finals_at or None,
                        max_audio_rate=args.max_audio_rate or None,
                        rtstt_ports=args.rtstt_ports, token=_token(args),
                        speech_engine=args.speech_engine, speech_voice=args.speech_voice,
                        max_upload_seconds=args.max_upload_seconds,
                        allow_origins=tuple(args.allow_origin),
                        allow_hosts=tuple(args.allow_host),
                        max_connections=args.max_connections,
                        max_connections_per_address=args.max_connections_per_address,
                        header_timeout_s=args.header_timeout,
                        admit_timeout_s=args.admit_timeout, idle_timeout_s=args.idle_timeout)


def _token(args: argparse.Namespace) -> str | None:
    """The token: ``--token-file``, else ``--token``, else ``HARKEN_TOKEN``, else None.

    Raises:
        ConfigError: the token file cannot be read.
    """
    from ..errors import ConfigError

    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as handle:
                first = handle.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the token file {args.token_file}: "
                              f"{exc}") from None
        if not first:
            raise ConfigError(f"the token file {args.token_file} is empty")
        return first
    return args.token or os.environ.get("HARKEN_TOKEN") or None


async def serve(config: Any) -> int:
    """Run a server with ``config`` until SIGINT or SIGTERM; return the exit status."""
    from ..server.app import Server

    server = Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(f"harken: loading the model ({config.engine.engine} {config.engine.model})...",
              file=sys.stderr, flush=True)
        await server.start()
        print(f"harken: listening on {server.url} (WebSocket {server.url.replace('http', 'ws')}"
              f"/v1/stream, OpenAI {server.url}/v1/audio/transcriptions); Ctrl+C stops",
              file=sys.stderr, flush=True)
        print(f"harken: browser page {server.url}/"
              + ("?token=<token>" if config.token else ""), file=sys.stderr, flush=True)
        if server.rtstt is not None and server.rtstt.ports is not None:
            print("harken: RealtimeSTT protocol on ws://{0}:{1} (control) and ws://{0}:{2} "
                  "(data)".format(config.host, *server.rtstt.ports), file=sys.stderr, flush=True)
        stopped = asyncio.ensure_future(stop.wait())
        failed = asyncio.ensure_future(server.wait_failed())
        try:
            await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stopped, failed):
                waiter.cancel()
            await asyncio.gather(stopped, failed, return_exceptions=True)
        if failed.done() and not failed.cancelled():
            print(f"harken: the speech engine failed for good ({failed.result()}); "
                  "shutting down", file=sys.stderr, flush=True)
            return ENGINE_FAILED
        print("harken: shutting down (finishing in-flight finals)...", file=sys.stderr,
              flush=True)
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await server.close()


def run(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM; return the exit status (:data:`ENGINE_FAILED`
    when the engine failed for good).
    """
    return asyncio.run(serve(_config(args)))
