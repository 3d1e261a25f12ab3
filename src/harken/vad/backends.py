"""The voice activity backends harken knows, and what each needs (a pure table, no I/O).

One table serves everything that names a VAD backend: :class:`~harken.config.VadConfig`
validates against it, :func:`~harken.vad.factory.create_vad` builds from it, the CLI offers
its names as choices, and the server's shared-model factory asks it whether a backend runs
Silero. Adding a backend means one row here and one branch in the factory.

Imports only :mod:`harken.errors`, so the config can validate through it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["VAD_BACKENDS", "VadBackend", "vad_backend"]


@dataclass(frozen=True)
class VadBackend:
    """One VAD backend: its name and the detectors (and so the extras) it needs."""

    name: str
    """The name a :class:`~harken.config.VadConfig` gives as ``backend``."""
    webrtc: bool
    """Runs WebRTC's detector (extra ``webrtc``: ``webrtcvad-wheels``)."""
    silero: bool
    """Runs the Silero model (extra ``silero``: onnxruntime, plus a package that ships the
    model file, such as faster-whisper)."""
    summary: str
    """One line for help texts."""

    @property
    def extras(self) -> tuple[str, ...]:
        """The pip extras this backend needs ("harken[webrtc,silero]"); () for none."""
        return tuple(extra for extra, used in (("webrtc", self.webrtc), ("silero", self.silero))
                     if used)


VAD_BACKENDS: dict[str, VadBackend] = {b.name: b for b in (
    VadBackend("webrtc+silero", webrtc=True, silero=True,
               summary="WebRTC gate on every frame, Silero where it hears speech (default)"),
    VadBackend("silero", webrtc=False, silero=True, summary="Silero on every frame"),
    VadBackend("webrtc", webrtc=True, silero=False,
               summary="WebRTC only (fast; calls loud noise speech)"),
    VadBackend("energy", webrtc=False, silero=False,
               summary="frame loudness only (no dependencies; for tests)"),
)}
"""Every backend by name, the default first."""


def vad_backend(name: str) -> VadBackend:
    """The table row for ``name``.

    Raises:
        ConfigError: an unknown name (the message lists the known ones).
    """
    backend = VAD_BACKENDS.get(name) if isinstance(name, str) else None
    if backend is None:
        choices = ", ".join(repr(n) for n in VAD_BACKENDS)
        raise ConfigError(f"vad backend must be one of {choices}, got {name!r}")
    return backend
