"""Voice activity detection: the detector protocol, its backends and a factory.

Importing this package imports no backend: :class:`WebRtcVad`, :class:`SileroVad`,
:class:`GatedVad` and :class:`EnergyVad` resolve on first access, and their optional
packages (``webrtcvad``, ``onnxruntime``) load only in ``load()``.

All detectors judge frames of :data:`FRAME_SAMPLES` float32 samples at 16 kHz and are
called from one thread (the pipeline thread).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .._lazy import lazy_exports
from ..errors import AudioFormatError
from ..units import FRAME_SAMPLES
from .base import VoiceActivityDetector

__all__ = [
    "FRAME_SAMPLES",
    "EnergyVad",
    "GatedVad",
    "SileroVad",
    "VoiceActivityDetector",
    "WebRtcVad",
    "check_frame",
    "create_vad",
]

_LAZY: dict[str, str] = {
    "EnergyVad": "harken.vad.energy",
    "GatedVad": "harken.vad.gated",
    "SileroVad": "harken.vad.silero",
    "WebRtcVad": "harken.vad.webrtc",
    "create_vad": "harken.vad.factory",
}

if TYPE_CHECKING:  # pragma: no cover
    from .energy import EnergyVad
    from .factory import create_vad
    from .gated import GatedVad
    from .silero import SileroVad
    from .webrtc import WebRtcVad

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
