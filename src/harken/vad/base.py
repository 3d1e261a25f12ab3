"""The voice activity detector protocol.

A detector judges fixed frames of :data:`FRAME_SAMPLES` float32 samples at 16 kHz
(32 ms, the frame Silero needs). It is called from one thread only (the pipeline thread).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..units import FRAME_SAMPLES

if TYPE_CHECKING:  # only in annotations: importing the protocol does not import numpy
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["FRAME_SAMPLES", "VoiceActivityDetector"]


@runtime_checkable
class VoiceActivityDetector(Protocol):
    """Decides, frame by frame, whether a frame holds speech."""

    def load(self) -> None:
        """Load models (may block). Called once before the first frame."""

    def is_speech(self, frame: NDArray[np.float32]) -> bool:
        """Judge one frame of exactly FRAME_SAMPLES samples."""

    def reset(self) -> None:
        """Forget stream state (between unrelated streams)."""

    def close(self) -> None:
        """Release resources."""
