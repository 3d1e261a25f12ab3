"""The end-of-turn model protocol.

A turn model hears the audio of an utterance up to now (float32 mono at 16 kHz, speech and
the silence after it) and says how likely it is that the speaker has finished their turn.
It is called from one thread (the pipeline thread), at most once per pause.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["TurnModel"]


@runtime_checkable
class TurnModel(Protocol):
    """Judges whether an utterance sounds finished."""

    def load(self) -> None:
        """Load models (may block). Called once before the first call of :meth:`predict`."""

    def predict(self, audio: NDArray[np.float32]) -> float:
        """Return P(the turn is complete), 0..1, for ``audio`` (16 kHz, ending now)."""

    def close(self) -> None:
        """Release resources. Idempotent."""
