"""Transcription engines: the protocol, the faster-whisper backend and a scripted test engine.

Backends are imported lazily by :func:`harken.engine.registry.create_engine`.
"""

from __future__ import annotations

from .base import DecodeHints, EngineOutput, TranscribeRequest, TranscriptionEngine, WordTiming

__all__ = ["DecodeHints", "EngineOutput", "TranscribeRequest", "TranscriptionEngine",
           "WordTiming"]
