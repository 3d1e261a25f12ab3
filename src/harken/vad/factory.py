"""Build the voice activity detector a :class:`~harken.config.VadConfig` names.

Nothing is loaded here: the caller (the pipeline thread's owner) calls ``load()`` on the
result, which is where optional packages are imported and can raise
:class:`~harken.errors.BackendNotInstalled`.
"""

from __future__ import annotations

from ..config import VadConfig
from ..errors import ConfigError
from .base import VoiceActivityDetector

__all__ = ["create_vad"]


def create_vad(config: VadConfig) -> VoiceActivityDetector:
    """Return an unloaded detector for ``config.backend``.

    ``"webrtc+silero"`` gives a :class:`~harken.vad.gated.GatedVad` whose WebRTC gate
    judges each frame by three 10 ms calls, any of which may pass it; ``"webrtc"`` gives a
    :class:`~harken.vad.webrtc.WebRtcVad` judging the first 30 ms; ``"silero"`` a
    :class:`~harken.vad.silero.SileroVad`; ``"energy"`` an
    :class:`~harken.vad.energy.EnergyVad`.

    Args:
        config: the VAD settings.

    Returns:
        A detector; call ``load()`` before the first frame.

    Raises:
        ConfigError: ``config`` is not a VadConfig or names an unknown backend.
    """
    if not isinstance(config, VadConfig):
        raise ConfigError(f"create_vad needs a VadConfig, got {type(config).__name__}")
    backend = config.backend
    if backend == "energy":
        from .energy import EnergyVad

        return EnergyVad(config.energy_threshold_db)
    if backend == "webrtc":
        from .webrtc import WebRtcVad

        return WebRtcVad(config.webrtc_sensitivity)
    if backend == "silero":
        from .silero import SileroVad

        return SileroVad(config.silero_threshold)
    if backend == "webrtc+silero":
        from .gated import GatedVad
        from .silero import SileroVad
        from .webrtc import WebRtcVad

        return GatedVad(WebRtcVad(config.webrtc_sensitivity, rule="any10"),
                        SileroVad(config.silero_threshold))
    raise ConfigError("vad backend must be 'webrtc+silero', 'silero', 'webrtc' or 'energy', "
                      f"got {backend!r}")
