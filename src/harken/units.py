"""Time inside harken: the sample rate, the VAD frame, and ms/samples/frames conversions (pure).

Every sample inside harken is float32 mono at :data:`SAMPLE_RATE`; the pure core counts time
in samples and steps in frames of :data:`FRAME_SAMPLES`. Settings are written in
milliseconds (``*_ms``) or seconds (``*_s``), and these functions turn them into samples and
frames.

One rounding rule serves them all: **a duration becomes the fewest whole units that cover
it** (it is rounded up). A setting such as "500 ms of silence ends an utterance" is a
duration to wait for, so rounding never shortens it: 500 ms is 8000 samples, 15.625 frames,
so 16 frames (512 ms). A float's representation noise below a millionth of a unit is
ignored, so 2.007 s is 2007 ms, not 2008 (``2.007 * 1000`` is 2007.0000000000002). Callers
that need at least one frame say so with ``max(1, ...)``.

Imports nothing from harken: this module and :mod:`harken.errors` are the ground floor.
"""

from __future__ import annotations

import math

__all__ = [
    "FRAME_MS",
    "FRAME_SAMPLES",
    "MIN_SILENCE_MS",
    "SAMPLE_RATE",
    "ms_to_frames",
    "ms_to_samples",
    "s_to_ms",
    "s_to_samples",
    "samples_to_frames",
]

SAMPLE_RATE = 16000
"""The rate of every sample inside harken, in Hz. Sources resample to it at the edge."""

FRAME_SAMPLES = 512
"""Samples per VAD frame at :data:`SAMPLE_RATE` (32 ms, the frame Silero needs)."""

FRAME_MS = 1000 * FRAME_SAMPLES // SAMPLE_RATE
"""The length of one VAD frame, in ms (32)."""

MIN_SILENCE_MS = FRAME_MS
"""The shortest ``post_speech_silence_ms``, in ms: one frame (32), since silence is judged
frame by frame. Every side entry (RealtimeSTT's seconds, OpenAI's ``silence_duration_ms``)
clamps to it."""

_NOISE = 1e-6
"""Float noise, in units of the result, that rounding up ignores."""


def _cover(numerator: float, denominator: int) -> int:
    """The fewest whole units covering ``numerator / denominator``."""
    if isinstance(numerator, int):
        return -(-numerator // denominator)  # exact for whole numbers
    return math.ceil(numerator / denominator - _NOISE)


def ms_to_samples(ms: float, rate: int = SAMPLE_RATE) -> int:
    """Samples covering ``ms`` milliseconds at ``rate`` Hz (rounded up)."""
    return _cover(ms * rate, 1000)


def s_to_samples(seconds: float, rate: int = SAMPLE_RATE) -> int:
    """Samples covering ``seconds`` at ``rate`` Hz (rounded up)."""
    return _cover(seconds * rate, 1)


def samples_to_frames(samples: int) -> int:
    """VAD frames of :data:`FRAME_SAMPLES` covering ``samples`` (rounded up)."""
    return _cover(samples, FRAME_SAMPLES)


def ms_to_frames(ms: float) -> int:
    """VAD frames covering ``ms`` milliseconds at :data:`SAMPLE_RATE` (rounded up).

    Example: 500 ms -> 16 frames (512 ms); 96 ms -> 3 frames; 0 ms -> 0 frames.
    """
    return _cover(ms * SAMPLE_RATE, 1000 * FRAME_SAMPLES)


def s_to_ms(seconds: float) -> int:
    """Whole milliseconds covering ``seconds`` (rounded up): RealtimeSTT's settings are in s."""
    return _cover(seconds * 1000, 1)
