"""The pure core: segmentation and the speech pipeline (no I/O, no clock, no threads)."""

from __future__ import annotations

from .pipeline import Output, SpeechPipeline
from .segmenter import Segment, Segmenter, UtteranceEnded, UtteranceStarted

__all__ = ["Output", "Segment", "Segmenter", "SpeechPipeline", "UtteranceEnded",
           "UtteranceStarted"]
