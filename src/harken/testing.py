"""Test kit for harken users and harken's own tests: synthetic audio and a scripted VAD.

Nothing here touches devices, models or the network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .units import SAMPLE_RATE

__all__ = ["ScriptedVad", "chunks", "normalize_text", "silence", "tone", "word_error_rate",
           "word_errors"]


def silence(seconds: float) -> NDArray[np.float32]:
    """``seconds`` of digital silence at 16 kHz."""
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.float32)


def tone(seconds: float, freq_hz: float = 220.0, amplitude: float = 0.3) -> NDArray[np.float32]:
    """A sine tone at 16 kHz, standing in for speech where a scripted VAD decides."""
    t = np.arange(int(round(seconds * SAMPLE_RATE)), dtype=np.float64) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def chunks(audio: NDArray[np.float32], chunk_samples: int) -> list[NDArray[np.float32]]:
    """Split ``audio`` into consecutive chunks of ``chunk_samples`` (the last may be short)."""
    return [audio[i:i + chunk_samples] for i in range(0, len(audio), chunk_samples)]


class ScriptedVad:
    """A VAD that calls a frame speech when it overlaps a scripted interval.

    Args:
        intervals: (start, end) pairs in seconds of stream time that are speech.
    """

    def __init__(self, intervals: Sequence[tuple[float, float]]) -> None:
        self._intervals = [(int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)) for a, b in intervals]
        self._position = 0
        self.frames_seen = 0

    def load(self) -> None:
        """Nothing to load."""

    def is_speech(self, frame: NDArray[np.float32]) -> bool:
        """True when the frame's middle sample lies in a scripted interval."""
        mid = self._position + len(frame) // 2
        self._position += len(frame)
        self.frames_seen += 1
        return any(a <= mid < b for a, b in self._intervals)

    def reset(self) -> None:
        """Restart the stream clock."""
        self._position = 0

    def close(self) -> None:
        """Nothing to release."""


def normalize_text(text: str) -> list[str]:
    """Lower-case words without punctuation, for word error rates."""
    import re

    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Word-level edit distance and reference length, after :func:`normalize_text`."""
    ref, hyp = normalize_text(reference), normalize_text(hypothesis)
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1], len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (0.0 = identical)."""
    errors, n = word_errors(reference, hypothesis)
    return errors / max(1, n)
