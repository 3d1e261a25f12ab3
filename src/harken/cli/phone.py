"""``harken phone``: answer SIP calls until Ctrl+C (or SIGTERM).

Prints each call's turns to stdout (``call 1 caller: ...`` / ``call 1 agent: ...``).
Ctrl+C hangs up every call and exits within about 2 s.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from .options import add_engine_args, engine_config, vad_config

__all__ = ["add_parser", "load_function", "run"]


def add_parser(subparsers: Any) -> None:
    """Add the ``phone`` command to the ``harken`` argument parser."""
    p = subparsers.add_parser(
        "phone", help="answer SIP phone calls: listen, reply by voice, barge-in",
        description="A SIP phone agent (needs the phone extra: pjsua2-python, GPL-2.0+).")
    p.add_argument("--listen", default="127.0.0.1:5070", metavar="HOST:PORT",
                   help="UDP address for SIP (default 127.0.0.1:5070: this machine only)")
    reply = p.add_mutually_exclusive_group()
    reply.add_argument("--echo", action="store_true", help="repeat what the caller said")
    reply.add_argument("--reply-with", metavar="MODULE:FUNCTION", default=None,
                       help="on_turn(call, text) -> str | iterable of str | None, imported "
                       "from your package, e.g. mybot.replies:answer")
    p.add_argument("--register", metavar="SIP_URI", default=None,
                   help="register with a SIP server as this URI, e.g. sip:bot@pbx.example")
    p.add_argument("--password", default=None, help="the registration's password")
    p.add_argument("--registrar", default=None, metavar="SIP_URI",
                   help="the registrar (default: sip:<host of --register>)")
    p.add_argument("--max-calls", type=int, default=4,
                   help="calls at once (default 4, the pjsua2-python wheel's own limit)")
    p.add_argument("--rtp-port", type=int, default=40000,
                   help="first UDP port for call audio (default 40000)")
    p.add_argument("--speech-engine", default=None, metavar="NAME",
                   help="the voice's engine: piper, espeak or package.module:Class (default: "
                   "Piper when installed, else espeak-ng; espeak answers fastest)")
    p.add_argument("--speech-voice", default=None, metavar="VOICE",
                   help="the engine's voice, e.g. en_US-joe-medium or en-us")
    p.add_argument("--no-barge-in", action="store_true",
                   help="let the agent finish speaking when the caller talks")
    add_engine_args(p)
    p.set_defaults(run=run)


def load_function(spec: str) -> Callable[..., Any]:
    """Import ``package.module:function``.

    Raises:
        ConfigError: the spec is malformed, the module or the name is missing.
    """
    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name.isidentifier():
        raise ConfigError(f"--reply-with {spec!r} must look like package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--reply-with: cannot import {module_name!r}: {exc}") from exc
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ConfigError(f"--reply-with: {module_name!r} has no function {name!r}")
    return fn  # type: ignore[no-any-return]


def run(args: argparse.Namespace) -> int:
    """Answer calls until SIGINT/SIGTERM; return the exit status."""
    from ..phone import PhoneAgent, SpeakerVoice

    on_turn = load_function(args.reply_with) if args.reply_with else None
    if on_turn is None and not args.echo:
        print("harken: no --echo or --reply-with: the agent listens and says nothing",
              file=sys.stderr)

    def turn(call: Any, text: str) -> Any:
        print(f"call {call.id} caller: {text}", flush=True)
        return on_turn(call, text) if on_turn is not None else (text if args.echo else None)

    agent = PhoneAgent(
        turn, listen=args.listen, register=args.register, password=args.password,
        registrar=args.registrar, max_calls=args.max_calls, rtp_port=args.rtp_port,
        barge_in=not args.no_barge_in,
        voice=SpeakerVoice(args.speech_voice, engine=args.speech_engine),
        engine=engine_config(args), vad=vad_config(args),
        on_call_start=lambda call: print(f"call {call.id} from {call.remote_uri}",
                                         flush=True),
        on_call_end=lambda call: print(f"call {call.id} ended ({call.end_reason})",
                                       flush=True),
        on_barge_in=lambda call, heard: print(f"call {call.id} barge-in after: {heard!r}",
                                              flush=True),
        on_error=lambda error, call: print(f"harken: {error}", file=sys.stderr, flush=True))
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"harken: loading the model ({args.engine} {args.model})...", file=sys.stderr,
              flush=True)
        agent.start()
        print(f"harken: answering calls at {agent.uri}; Ctrl+C stops", file=sys.stderr,
              flush=True)
        while not stop.wait(0.2):
            if agent.wait(0):
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("harken: hanging up", file=sys.stderr, flush=True)
        agent.close(timeout=1.5)
    return 0
