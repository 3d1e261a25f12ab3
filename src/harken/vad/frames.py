"""Checking a VAD frame: 1-D float32, :data:`~harken.units.FRAME_SAMPLES` samples, finite.

Every detector runs :func:`check_frame` before judging a frame, on the pipeline thread.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..errors import AudioFormatError
from ..units import FRAME_SAMPLES

__all__ = ["check_frame"]

_FLOAT32 = np.dtype(np.float32)


def check_frame(frame: NDArray[np.float32]) -> None:
    """Check that ``frame`` is one VAD frame: 1-D float32, FRAME_SAMPLES (512) samples.

    Args:
        frame: the samples, float32 in [-1, 1] at 16 kHz.

    Raises:
        AudioFormatError: the frame is not a numpy array, has another dtype, shape or
            length, or holds NaN or infinity.
    """
    if not isinstance(frame, np.ndarray):
        raise AudioFormatError(
            f"a VAD frame must be a numpy float32 array, got {type(frame).__name__}"
        )
    if frame.dtype != _FLOAT32:
        raise AudioFormatError(
            f"a VAD frame must have dtype float32 (samples in -1..1), got {frame.dtype}"
        )
    if frame.shape != (FRAME_SAMPLES,):
        raise AudioFormatError(
            f"a VAD frame must be 1-D with exactly {FRAME_SAMPLES} samples (32 ms at "
            f"16 kHz), got shape {frame.shape}"
        )
    if not math.isfinite(float(np.dot(frame, frame))):
        raise AudioFormatError("a VAD frame must not hold NaN or infinite samples")
