"""Build the voice activity detector a :class:`~harken.config.VadConfig` names.

The backend's row in :data:`~harken.vad.backends.VAD_BACKENDS` says which detectors it
runs; this module composes them. Nothing is loaded here: the caller (the pipeline thread's
owner) calls ``load()`` on the result, which is where optional packages are imported and can
raise :class:`~harken.errors.BackendNotInstalled`.
"""

from __future__ import annotations

from typing import Any

from ..config import VadConfig
from ..errors import ConfigError
from .backends import vad_backend
from .base import VoiceActivityDetector

__all__ = ["create_vad"]


def create_vad(config: VadConfig, *, silero_session: Any = None) -> VoiceActivityDetector:
    """Return an unloaded detector for ``config.backend``.

    ``"webrtc+silero"`` gives a :class:`~harken.vad.gated.GatedVad` whose WebRTC gate
    judges each frame by three 10 ms calls, any of which may pass it; ``"webrtc"`` gives a
    :class:`~harken.vad.webrtc.WebRtcVad` judging the first 30 ms; ``"silero"`` a
    :class:`~harken.vad.silero.SileroVad`; ``"energy"`` an
    :class:`~harken.vad.energy.EnergyVad`.

    Args:
        config: the VAD settings.
        silero_session: an ``onnxruntime.InferenceSession`` of the Silero model (see
            :func:`~harken.vad.silero.open_session`) for the Silero detector to run on
            instead of loading its own; many detectors may share one. Ignored by backends
            without Silero.

    Returns:
        A detector; call ``load()`` before the first frame.

    Raises:
        ConfigError: ``config`` is not a VadConfig or names an unknown backend.
    """
    if not isinstance(config, VadConfig):
        raise ConfigError(f"create_vad needs a VadConfig, got {type(config).__name__}")
    backend = vad_backend(config.backend)
    if backend.silero:
        from .silero import SileroVad

        silero = SileroVad(config.silero_threshold, session=silero_session)
        if not backend.webrtc:
            return silero
        from .gated import GatedVad
        from .webrtc import WebRtcVad

        return GatedVad(WebRtcVad(config.webrtc_sensitivity, rule="any10"), silero)
    if backend.webrtc:
        from .webrtc import WebRtcVad

        return WebRtcVad(config.webrtc_sensitivity)
    from .energy import EnergyVad

    return EnergyVad(config.energy_threshold_db)
