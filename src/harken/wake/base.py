"""The wake word detector protocol (frame-level backends: Porcupine, openWakeWord).

A detector hears every frame of :data:`FRAME_SAMPLES` float32 samples at 16 kHz while the
recorder waits for a wake word, and says which keyword, if any, ended in that frame. It is
called from one thread only (the pipeline thread); ``load`` may block and runs in
``Recorder.start()``.

The phrase backend (any phrase, no training) is not a frame detector: it judges the text of
whole VAD-bounded utterances, see :mod:`harken.wake.phrase`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..units import FRAME_SAMPLES

__all__ = ["FRAME_SAMPLES", "WakeWordDetector", "values_per_keyword"]


def values_per_keyword(values: Sequence[float] | float, count: int, *,
                       ok: Callable[[float], bool], error: str) -> list[float]:
    """One number per keyword (a sensitivity or threshold); a single number serves them all.

    Raises:
        ConfigError: with ``error`` when the count does not match or a value fails ``ok``.
    """
    if isinstance(values, (int, float)):
        out = [float(values)] * count
    else:
        out = [float(v) for v in values]
    if len(out) != count or not all(ok(v) for v in out):
        raise ConfigError(error)
    return out


@runtime_checkable
class WakeWordDetector(Protocol):
    """Finds keywords in a stream of frames."""

    @property
    def keywords(self) -> tuple[str, ...]:
        """The keywords this detector reports, as :meth:`process` names them."""

    def load(self) -> None:
        """Load the models (may block). Raises BackendNotInstalled or ConfigError."""

    def process(self, frame: NDArray[np.float32]) -> str | None:
        """Judge one frame of exactly FRAME_SAMPLES float32 samples at 16 kHz.

        Returns:
            The keyword detected in this frame, or None.
        """

    def reset(self) -> None:
        """Forget the audio heard so far (the stream was interrupted)."""

    def close(self) -> None:
        """Release the models. Idempotent."""
