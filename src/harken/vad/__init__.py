"""Voice activity detection: the detector protocol, its backends and a factory.

Importing this package imports no backend, nor numpy: :class:`WebRtcVad`, :class:`SileroVad`,
:class:`GatedVad`, :class:`EnergyVad` and :func:`check_frame` resolve on first access, and
the optional packages (``webrtcvad``, ``onnxruntime``) load only in ``load()``. So the config
can validate against :mod:`~harken.vad.backends` at no cost.

All detectors judge frames of :data:`FRAME_SAMPLES` float32 samples at 16 kHz and are
called from one thread (the pipeline thread).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
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
    "check_frame": "harken.vad.frames",
    "create_vad": "harken.vad.factory",
}

if TYPE_CHECKING:  # pragma: no cover
    from .energy import EnergyVad
    from .factory import create_vad
    from .frames import check_frame
    from .gated import GatedVad
    from .silero import SileroVad
    from .webrtc import WebRtcVad

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
