"""Where sound is on a call recording (pure): for tests and benchmarks of phone agents.

baresip records what it sent and what it heard on one clock (both files start when the
call's audio starts), so latencies can be read off the two recordings: the caller's end of
speech in one, the first reply audio in the other.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..audio.resample import StreamResampler

__all__ = ["active_spans", "to_16k_float", "to_8k_int16"]


def active_spans(audio: NDArray[np.int16], sample_rate: int = 8000, *,
                 threshold_db: float = -40.0, min_gap_ms: int = 300,
                 frame_ms: int = 10) -> list[tuple[float, float]]:
    """Spans (start, end) in seconds where the level is above ``threshold_db`` dBFS.

    Gaps shorter than ``min_gap_ms`` join their neighbours (pauses between words).
    """
    frame = max(1, sample_rate * frame_ms // 1000)
    n = len(audio) // frame
    if n == 0:
        return []
    x = audio[:n * frame].astype(np.float64).reshape(n, frame) / 32768.0
    level = 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)
    loud = level > threshold_db
    spans: list[tuple[float, float]] = []
    start: int | None = None
    for i, on in enumerate(loud):
        if on and start is None:
            start = i
        elif not on and start is not None:
            spans.append((start * frame_ms / 1000, i * frame_ms / 1000))
            start = None
    if start is not None:
        spans.append((start * frame_ms / 1000, n * frame_ms / 1000))
    merged: list[tuple[float, float]] = []
    for s, e in spans:
        if merged and s - merged[-1][1] < min_gap_ms / 1000:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def to_16k_float(audio: NDArray[np.int16], sample_rate: int = 8000) -> NDArray[np.float32]:
    """int16 samples at ``sample_rate`` as float32 at 16 kHz (for a recognizer)."""
    resampler = StreamResampler(sample_rate, 16000)
    x = audio.astype(np.float32) / 32768.0
    return np.concatenate([resampler.process(x), resampler.flush()]).astype(np.float32)


def to_8k_int16(audio: NDArray[np.float32], sample_rate: int = 16000) -> NDArray[np.int16]:
    """float32 samples at ``sample_rate`` as int16 at 8 kHz (a caller's microphone)."""
    resampler = StreamResampler(sample_rate, 8000)
    y = np.concatenate([resampler.process(audio.astype(np.float32)), resampler.flush()])
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)
