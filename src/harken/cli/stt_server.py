"""``harken stt-server`` (also ``harken-stt-server``): RealtimeSTT's ``stt-server`` on harken.

Takes every flag of RealtimeSTT 1.1.2's ``stt-server`` with the same spelling and default,
and serves its two-socket protocol (:mod:`harken.server.rtstt`) on the control and data
ports (8011 and 8012 by default), so ``AudioToTextRecorderClient`` and RealtimeSTT's ``stt``
client work unchanged. Unlike stt-server, each client gets its own session on the shared
engine. :data:`FLAGS` says what each flag becomes; flags about RealtimeSTT's internals are
accepted and change nothing (listed as no-ops in the README).

RealtimeSTT's client starts the server by running ``stt-server`` from ``PATH``; put a
``stt-server`` that runs ``harken stt-server "$@"`` ahead of RealtimeSTT's on ``PATH`` (the
README shows one) to have it start harken's.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..units import s_to_ms

__all__ = ["FLAGS", "add_parser", "build_parser", "main", "run"]

_INITIAL_PROMPT = ("Incomplete thoughts should end with '...'. Examples of complete thoughts: "
                   "'The sky is blue.' 'She walked home.' Examples of incomplete thoughts: "
                   "'When the sky...' 'Because he...'")

# (flags, keywords, what harken does with it). "no-op: ..." flags are accepted and unused.
FLAGS: list[tuple[tuple[str, ...], dict[str, Any], str]] = [
    (("-m", "--model"), {"type": str, "default": "large-v2"}, "engine model"),
    (("-r", "--rt-model", "--realtime_model_type"), {"type": str, "default": "tiny"},
     "no-op: live text uses the main model"),
    (("-l", "--lang", "--language"), {"type": str, "default": "en"}, "language"),
    (("-i", "--input-device", "--input-device-index"), {"type": int, "default": 1},
     "no-op: the server takes audio from its clients"),
    (("-c", "--control", "--control_port"), {"type": int, "default": 8011},
     "control socket port"),
    (("-d", "--data", "--data_port"), {"type": int, "default": 8012}, "data socket port"),
    (("-w", "--wake_words"), {"type": str, "default": ""},
     "wake_words of every session (each runs its own detector)"),
    (("-D", "--debug"), {"action": "store_true"}, "log level DEBUG"),
    (("--debug_websockets",), {"action": "store_true"}, "log level DEBUG"),
    (("-W", "--write"), {"metavar": "FILE"}, "no-op: harken records no WAV file"),
    (("-b", "--batch", "--batch_size"), {"type": int, "default": 16},
     "no-op: the engine batches itself"),
    (("--root", "--download_root"), {"type": str, "default": None}, "download_root"),
    (("-s", "--silence_timing"), {"action": "store_true", "default": True},
     "no-op: pauses come from the sentence-pause flags"),
    (("--init_realtime_after_seconds",), {"type": float, "default": 0.2}, "partial_min_ms"),
    (("--realtime_batch_size",), {"type": int, "default": 16}, "no-op"),
    (("--initial_prompt_realtime",), {"type": str, "default": ""}, "no-op"),
    (("--silero_sensitivity",), {"type": float, "default": 0.05},
     "silero_threshold = 1 - sensitivity"),
    (("--silero_use_onnx",), {"action": "store_true", "default": False},
     "no-op: always ONNX"),
    (("--webrtc_sensitivity",), {"type": int, "default": 3}, "webrtc_sensitivity"),
    (("--min_length_of_recording",), {"type": float, "default": 1.1}, "min_utterance_ms"),
    (("--min_gap_between_recordings",), {"type": float, "default": 0}, "no-op"),
    (("--enable_realtime_transcription",), {"action": "store_true", "default": True},
     "partials (always on, as in stt-server)"),
    (("--realtime_processing_pause",), {"type": float, "default": 0.02},
     "partial_interval_ms"),
    (("--silero_deactivity_detection",), {"action": "store_true", "default": True}, "no-op"),
    (("--deactivity_silence_confirmation_duration",), {"type": float, "default": 0.16},
     "no-op"),
    (("--early_transcription_on_silence",), {"type": float, "default": 0.2},
     "early finals (any value > 0)"),
    (("--beam_size",), {"type": int, "default": 5}, "beam_size"),
    (("--beam_size_realtime",), {"type": int, "default": 3}, "no-op: partials take one beam"),
    (("--initial_prompt",), {"type": str, "default": _INITIAL_PROMPT}, "no-op"),
    (("--end_of_sentence_detection_pause",), {"type": float, "default": 0.45},
     "min_silence_ms of smart turns (set: turn_detection='smart')"),
    (("--unknown_sentence_detection_pause",), {"type": float, "default": 0.7},
     "post_speech_silence_ms"),
    (("--mid_sentence_detection_pause",), {"type": float, "default": 2.0},
     "max_silence_ms of smart turns (set: turn_detection='smart')"),
    (("--wake_words_sensitivity",), {"type": float, "default": 0.5}, "wake_sensitivity"),
    (("--wake_word_timeout",), {"type": float, "default": 5.0}, "wake_timeout_s"),
    (("--wake_word_activation_delay",), {"type": float, "default": 0},
     "wake_activation_delay_s"),
    (("--wakeword_backend",), {"type": str, "default": "none"},
     "wake_backend ('pvporcupine', 'oww'/'openwakeword', 'phrase'; 'none': Porcupine for "
     "its keywords when installed, else phrase)"),
    (("--openwakeword_model_paths",), {"type": str, "nargs": "*"},
     "openWakeWord models (with --wakeword_backend oww)"),
    (("--openwakeword_inference_framework",), {"type": str, "default": "tensorflow"},
     "no-op: harken's openWakeWord runtime picks its own"),
    (("--wake_word_buffer_duration",), {"type": float, "default": 1.0},
     "no-op: the command's audio starts after the wake word already"),
    (("--use_main_model_for_realtime",), {"action": "store_true"}, "no-op: always"),
    (("--use_extended_logging",), {"action": "store_true"}, "log level DEBUG"),
    (("--compute_type",), {"type": str, "default": "default"},
     "compute_type ('default' is int8)"),
    (("--gpu_device_index",), {"type": int, "default": 0}, "no-op: CUDA_VISIBLE_DEVICES"),
    (("--device",), {"type": str, "default": "cuda"}, "device ('cuda' is harken's 'auto')"),
    (("--handle_buffer_overflow",), {"action": "store_true"}, "no-op"),
    (("--suppress_tokens",), {"type": int, "default": [-1], "nargs": "*"}, "no-op"),
    (("--allowed_latency_limit",), {"type": int, "default": 100}, "no-op"),
    (("--faster_whisper_vad_filter",), {"action": "store_true"}, "no-op"),
    (("--logchunks",), {"action": "store_true"}, "no-op"),
]
"""stt-server's flags (RealtimeSTT 1.1.2), with harken's treatment of each."""

_SMART_PAUSES = {flags[-1].lstrip("-"): kwargs["default"] for flags, kwargs, _ in FLAGS
                 if flags[-1] in ("--end_of_sentence_detection_pause",
                                  "--mid_sentence_detection_pause")}
"""stt-server's end- and mid-sentence pauses (s) by name: at these, harken keeps fixed turns."""


def _add_flags(p: argparse.ArgumentParser) -> None:
    for flags, kwargs, note in FLAGS:
        p.add_argument(*flags, help=note, dest=flags[-1].lstrip("-").replace("-", "_"),
                       **kwargs)
    p.add_argument("--host", default="127.0.0.1",
                   help="harken only: interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0,
                   help="harken only: port of harken's own HTTP/WebSocket API (default 0: any)")


def add_parser(subparsers: Any) -> None:
    """Add the ``stt-server`` command to the ``harken`` argument parser."""
    s = subparsers.add_parser(
        "stt-server", help="RealtimeSTT's stt-server (its flags and two-socket protocol)",
        description="Serve RealtimeSTT's stt-server protocol with harken.")
    _add_flags(s)
    s.set_defaults(run=run)


def build_parser() -> argparse.ArgumentParser:
    """The ``harken-stt-server`` console script's parser."""
    p = argparse.ArgumentParser(prog="harken-stt-server",
                                description="RealtimeSTT's stt-server, served by harken.")
    _add_flags(p)
    return p


def _turn_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Smart turns when the end- or mid-sentence pause differs from stt-server's default.

    stt-server waits ``end_of_sentence_detection_pause`` after a finished sentence,
    ``mid_sentence_detection_pause`` after one that trails off and
    ``unknown_sentence_detection_pause`` otherwise; harken's smart turns wait
    ``min_silence_ms``, ``max_silence_ms`` and ``post_speech_silence_ms`` in the same cases.
    The unknown pause alone is the fixed silence, so it needs no turn model.

    Raises:
        ConfigError: a pause flag is set but the Smart Turn model (pipecat-ai) is missing.
    """
    from ..errors import ConfigError, SmartTurnNotFound
    from ..turn.smart_turn import find_smart_turn_model

    end, mid = args.end_of_sentence_detection_pause, args.mid_sentence_detection_pause
    if all(getattr(args, name) == default for name, default in _SMART_PAUSES.items()):
        return {}
    try:
        find_smart_turn_model()
    except SmartTurnNotFound:
        raise ConfigError(
            f"--end_of_sentence_detection_pause={end} / --mid_sentence_detection_pause={mid} "
            "need harken's smart turn detection, whose Smart Turn model comes with the "
            "pipecat-ai package: install it (pip install pipecat-ai --no-deps), or leave these "
            "flags at their defaults and set the one pause with "
            "--unknown_sentence_detection_pause") from None
    return {"turn_detection": "smart", "min_silence_ms": s_to_ms(end),
            "max_silence_ms": s_to_ms(mid)}


def _wake(args: argparse.Namespace) -> Any:
    """The sessions' wake words from stt-server's wake flags (RealtimeSTT's backend rules).

    The backend is built and loaded once here, so a missing one stops the server at start.

    Raises:
        ConfigError, BackendNotInstalled: an unknown word or backend, or a backend whose
            package is not installed (the message says which to install).
    """
    from ..compat.mapping import wake_settings
    from ..config import WakeConfig
    from ..wake.base import WakeWordDetector
    from ..wake.factory import build_wake_backend

    paths = ",".join(args.openwakeword_model_paths or ()) or None
    settings = wake_settings(args.wake_words, args.wakeword_backend, paths,
                             args.wake_words_sensitivity, args.wake_word_timeout,
                             args.wake_word_activation_delay)
    if not settings:
        return WakeConfig()
    config = WakeConfig(words=settings["wake_words"], backend=settings["wake_backend"],
                        sensitivity=settings["wake_sensitivity"],
                        timeout_s=settings["wake_timeout_s"],
                        activation_delay_s=settings["wake_activation_delay_s"])
    backend = build_wake_backend(config.backend, config.words, config.sensitivity)
    if isinstance(backend, WakeWordDetector):
        try:
            backend.load()
        finally:
            backend.close()
    return config


def _config(args: argparse.Namespace) -> Any:
    from ..config import EngineConfig, RealtimeConfig, VadConfig
    from ..server.app import ServerConfig

    compute = "int8" if args.compute_type in ("default", "auto") else args.compute_type
    engine = EngineConfig(model=args.model, language=args.language or None,
                          device="auto" if args.device == "cuda" else args.device,
                          compute_type=compute, beam_size=args.beam_size,
                          download_root=args.download_root)
    vad = VadConfig(webrtc_sensitivity=args.webrtc_sensitivity,
                    silero_threshold=round(1.0 - args.silero_sensitivity, 4),
                    min_utterance_ms=s_to_ms(args.min_length_of_recording),
                    post_speech_silence_ms=s_to_ms(args.unknown_sentence_detection_pause),
                    **_turn_settings(args))
    realtime = RealtimeConfig(
        partials=True,
        partial_interval_ms=s_to_ms(args.realtime_processing_pause),
        partial_min_ms=s_to_ms(args.init_realtime_after_seconds),
        early_final=bool(args.early_transcription_on_silence))
    return ServerConfig(host=args.host, port=args.port, engine=engine, vad=vad,
                        realtime=realtime, rtstt_ports=(args.control_port, args.data_port),
                        rtstt_wake=_wake(args))


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; return the exit status."""
    import asyncio
    import logging

    from .serve import serve

    if args.debug or args.debug_websockets or args.use_extended_logging:
        logging.getLogger("harken").setLevel(logging.DEBUG)
    return asyncio.run(serve(_config(args)))


def main(argv: list[str] | None = None) -> int:
    """``harken-stt-server``: the same as ``harken stt-server``."""
    import logging

    from ..errors import HarkenError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except HarkenError as exc:
        print(f"harken-stt-server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
