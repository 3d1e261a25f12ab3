"""A dependency-free voice activity detector: a frame is speech when it is loud enough.

:class:`EnergyVad` compares each frame's RMS level in dBFS with a fixed threshold. It knows
nothing about speech (a loud fan or a tone counts as speech), so it serves fast unit tests
of the core and installs without optional packages. Called from the pipeline thread only.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..units import FRAME_SAMPLES
from .frames import check_frame

__all__ = ["EnergyVad", "frame_dbfs"]

_MIN_DB = -120.0
"""Floor of the level scale in dBFS; digital silence reads as this."""


def frame_dbfs(frame: NDArray[np.float32]) -> float:
    """Return the RMS level of ``frame`` in dBFS (0 dBFS = a full-scale square wave).

    Args:
        frame: float32 samples in [-1, 1].

    Returns:
        The level in dBFS, never below -120 (digital silence).
    """
    power = float(np.dot(frame, frame)) / max(len(frame), 1)
    if power <= 0.0:
        return _MIN_DB
    return max(_MIN_DB, 10.0 * math.log10(power))


class EnergyVad:
    """Calls a frame speech when its RMS level is at or above ``threshold_db`` dBFS.

    Args:
        threshold_db: level in dBFS, from -120 to 0. The default -45 dBFS suits a close
            microphone in a quiet room; raise it in noise.

    Raises:
        ConfigError: ``threshold_db`` is not a finite number in [-120, 0].
    """

    def __init__(self, threshold_db: float = -45.0) -> None:
        if (isinstance(threshold_db, bool) or not isinstance(threshold_db, (int, float))
                or not math.isfinite(threshold_db) or not _MIN_DB <= threshold_db <= 0.0):
            raise ConfigError(
                f"threshold_db must be a number of dBFS from -120 to 0, got {threshold_db!r}"
            )
        self.threshold_db = float(threshold_db)
        # Compare mean power with a precomputed linear power: no log per frame.
        self._threshold_power = 10.0 ** (self.threshold_db / 10.0) * FRAME_SAMPLES

    def load(self) -> None:
        """Nothing to load; present for the protocol."""

    def is_speech(self, frame: NDArray[np.float32]) -> bool:
        """Judge one frame.

        Args:
            frame: exactly 512 float32 samples at 16 kHz.

        Returns:
            True when the frame's RMS level reaches ``threshold_db``.

        Raises:
            AudioFormatError: the frame has the wrong type, dtype or length.
        """
        check_frame(frame)
        energy = float(np.dot(frame, frame))
        return energy > 0.0 and energy >= self._threshold_power

    def reset(self) -> None:
        """Nothing to forget: every frame is judged on its own."""

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"EnergyVad(threshold_db={self.threshold_db})"
