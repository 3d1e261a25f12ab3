"""A test engine: one short beep per word, with a pause between words.

Deterministic and dependency-free, for tests, demos and benchmarks of the speech path. Each
word is yielded as its own chunk, after ``delay_ms`` of pretend work, so a sentence takes
time to synthesise and can be stopped or killed in the middle.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

__all__ = ["ToneEngine"]


class ToneEngine:
    """Beeps instead of words.

    Args:
        voice: ignored ("beep").
        sample_rate: the output rate in Hz.
        word_ms: the length of one word's beep plus its pause, in milliseconds.
        delay_ms: pretend synthesis time per word, in milliseconds.
        fail_on: raise ValueError for a sentence containing this word (tests).
        hang_on: never finish a sentence containing this word (tests of the watchdog).
    """

    def __init__(self, voice: str = "beep", *, sample_rate: int = 16000, word_ms: int = 200,
                 delay_ms: int = 0, fail_on: str | None = None,
                 hang_on: str | None = None) -> None:
        self.sample_rate = int(sample_rate)
        self._word_ms = int(word_ms)
        self._delay_ms = int(delay_ms)
        self._fail_on = fail_on
        self._hang_on = hang_on

    def load(self) -> None:
        """Nothing to load."""

    def synthesize(self, text: str, speed: float) -> Iterator[NDArray[np.float32]]:
        """Yield one beep (two thirds tone, one third silence) per word of ``text``."""
        words = text.split()
        if self._fail_on is not None and self._fail_on in words:
            raise ValueError(f"the tone engine was told to fail on {self._fail_on!r}")
        while self._hang_on is not None and self._hang_on in words:
            time.sleep(60)
        n = max(1, round(self.sample_rate * self._word_ms / 1000 / speed))
        t = np.arange(n * 2 // 3, dtype=np.float32) / self.sample_rate
        beep = (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
        word = np.concatenate([beep, np.zeros(n - beep.size, dtype=np.float32)])
        for _ in words:
            if self._delay_ms:
                time.sleep(self._delay_ms / 1000)
            yield word.copy()

    def close(self) -> None:
        """Nothing to free."""
