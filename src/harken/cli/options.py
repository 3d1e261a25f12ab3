"""Command-line options shared by the commands that load a model (transcribe, listen, serve, phone).

Defaults and choices are read from the config dataclasses and the VAD backend table, so the
command line and the library cannot disagree.
"""

from __future__ import annotations

import argparse

from ..config import DEVICES, TURN_DETECTIONS, EngineConfig, VadConfig
from ..vad.backends import VAD_BACKENDS

__all__ = ["add_engine_args", "engine_config", "vad_config"]


def _codes(text: str) -> tuple[str, ...]:
    """"en,zh" -> ("en", "zh")."""
    return tuple(code.strip() for code in text.split(",") if code.strip())


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """Add the model and voice-activity option groups to ``p``."""
    engine, vad = EngineConfig(), VadConfig()
    g = p.add_argument_group("model")
    g.add_argument("--model", default=engine.model,
                   help="faster-whisper model name or directory (default: the embedded "
                        f"{engine.model})")
    g.add_argument("--language", default=engine.language,
                   help="language code, e.g. en (default: detect)")
    g.add_argument("--languages", default=engine.languages, type=_codes,
                   help="with no --language: detect only among these codes, e.g. en,zh")
    g.add_argument("--numerals", default=engine.numerals, choices=("arabic", "chinese"),
                   help="numbers in Chinese text as digits (3点) or numerals (三点) "
                        "(default: as the model writes them)")
    g.add_argument("--device", default=engine.device, choices=DEVICES)
    g.add_argument("--compute-type", default=engine.compute_type)
    g.add_argument("--beam-size", type=int, default=engine.beam_size)
    g.add_argument("--engine", default=engine.engine,
                   help=f"engine backend: {engine.engine} (default) or scripted (a test engine)")
    v = p.add_argument_group("voice activity")
    v.add_argument("--vad", default=vad.backend, choices=list(VAD_BACKENDS),
                   help="; ".join(f"{b.name}: {b.summary}" for b in VAD_BACKENDS.values()))
    v.add_argument("--silence-ms", type=int, default=vad.post_speech_silence_ms,
                   help="silence that ends an utterance, in ms (default "
                        f"{vad.post_speech_silence_ms})")
    v.add_argument("--turn", default=vad.turn_detection, choices=list(TURN_DETECTIONS),
                   help="end of turn: after --silence-ms (fixed) or decided from the voice and "
                        "the words (smart; needs: pip install --no-deps pipecat-ai==1.14.0); "
                        f"default {vad.turn_detection}")


def engine_config(args: argparse.Namespace) -> EngineConfig:
    """The EngineConfig that the options of :func:`add_engine_args` describe."""
    return EngineConfig(engine=args.engine, model=args.model, device=args.device,
                        compute_type=args.compute_type, beam_size=args.beam_size,
                        language=args.language, languages=args.languages,
                        numerals=args.numerals)


def vad_config(args: argparse.Namespace) -> VadConfig:
    """The VadConfig that the options of :func:`add_engine_args` describe."""
    return VadConfig(backend=args.vad, post_speech_silence_ms=args.silence_ms,
                     turn_detection=args.turn)
