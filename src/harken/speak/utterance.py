"""The speaker's bookkeeping: one utterance per ``speak()`` call, cut into units.

Plain data, guarded by the speaker's lock; no threads here.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .cutter import TextCutter
from .report import SentenceReport, SpeechHandle, SpeechReport

__all__ = ["Unit", "Utterance"]


@dataclass(eq=False)
class Unit:
    """One sentence or clause: its request and the audio received but not yet delivered."""

    text: str
    utterance: Utterance
    request_id: int | None = None
    buffer: collections.deque[NDArray[np.float32]] = field(default_factory=collections.deque)
    taken: int = 0
    """Samples taken from the buffer for delivery (engine rate)."""
    delivered: int = 0
    """Samples the sink has taken (engine rate)."""
    skip: int = 0
    """Samples still to drop from a restarted synthesis (they were taken already)."""
    total: int | None = None
    """The sentence's length in samples once synthesis is done."""
    error: BaseException | None = None

    def add(self, audio: NDArray[np.float32]) -> None:
        """Buffer a chunk from the engine, minus what a restart repeats."""
        if self.skip:
            drop = min(self.skip, audio.size)
            self.skip -= drop
            audio = audio[drop:]
        if audio.size:
            self.buffer.append(audio)

    def restart(self) -> None:
        """The engine starts this sentence over: drop the buffer, skip what was taken."""
        self.buffer.clear()
        self.skip = self.taken

    def take(self, limit: int) -> NDArray[np.float32]:
        """Remove and return up to ``limit`` buffered samples."""
        parts: list[NDArray[np.float32]] = []
        need = limit
        while need > 0 and self.buffer:
            head = self.buffer[0]
            if head.size <= need:
                parts.append(self.buffer.popleft())
                need -= head.size
            else:
                parts.append(head[:need])
                self.buffer[0] = head[need:]
                need = 0
        piece = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        self.taken += piece.size
        return piece

    def report(self, sample_rate: int) -> SentenceReport:
        """This unit's :class:`SentenceReport`."""
        return SentenceReport(self.text, self.delivered, self.total, sample_rate)


@dataclass(eq=False)
class Utterance:
    """One ``speak()`` call: its handle, cutter and units."""

    handle: SpeechHandle
    cutter: TextCutter
    units: list[Unit] = field(default_factory=list)
    input_done: bool = False
    finished: bool = False
    interrupted: bool = False
    error: BaseException | None = None

    def report(self, sample_rate: int) -> SpeechReport:
        """The utterance's :class:`SpeechReport` as it stands."""
        return SpeechReport(tuple(u.report(sample_rate) for u in self.units),
                            interrupted=self.interrupted, error=self.error)

    def finish(self, sample_rate: int) -> None:
        """Mark it finished and complete its handle (idempotent)."""
        if not self.finished:
            self.finished = True
            self.handle._update(self.report(sample_rate), done=True)
