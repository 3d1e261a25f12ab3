"""harken.audio: conversion of incoming audio to float32 mono, and streaming resampling.

Importing this package imports numpy only; soxr is imported when a resampler first runs.
"""

from __future__ import annotations

from .convert import (
    ENCODINGS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    alaw_to_float32,
    check_sample_rate,
    float32_to_pcm16,
    to_float32_mono,
    ulaw_to_float32,
)
from .resample import StreamResampler

__all__ = [
    "ENCODINGS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "StreamResampler",
    "alaw_to_float32",
    "check_sample_rate",
    "float32_to_pcm16",
    "to_float32_mono",
    "ulaw_to_float32",
]
