"""Command-line options shared by the commands that load a model (transcribe, listen, serve)."""

from __future__ import annotations

import argparse

__all__ = ["add_engine_args"]


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """Add the model and voice-activity option groups to ``p``."""
    g = p.add_argument_group("model")
    g.add_argument("--model", default="tiny.en",
                   help="faster-whisper model name or directory (default: the embedded tiny.en)")
    g.add_argument("--language", default=None, help="language code, e.g. en (default: detect)")
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    g.add_argument("--compute-type", default="int8")
    g.add_argument("--beam-size", type=int, default=5)
    g.add_argument("--engine", default="faster-whisper",
                   help="engine backend: faster-whisper (default) or scripted (a test engine)")
    v = p.add_argument_group("voice activity")
    v.add_argument("--vad", default="webrtc+silero",
                   choices=["webrtc+silero", "silero", "webrtc", "energy"])
    v.add_argument("--silence-ms", type=int, default=500,
                   help="silence that ends an utterance, in ms (default 500)")
