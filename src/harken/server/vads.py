"""Voice activity detectors for server sessions, sharing one Silero model.

Every session needs its own detector (each keeps its stream's state), but the Silero ONNX
model is stateless, so :class:`VadFactory` loads one session of it when the server starts
and :func:`~harken.vad.factory.create_vad` builds each session's detector on it: a new
session costs no model load, which keeps connection churn cheap.

Thread: :meth:`VadFactory.load` blocks (~0.1 s; the server runs it on a worker thread);
:meth:`VadFactory.create` is quick and runs on the server's event loop.
"""

from __future__ import annotations

from typing import Any

from ..config import VadConfig
from ..vad.backends import vad_backend
from ..vad.base import VoiceActivityDetector
from ..vad.factory import create_vad

__all__ = ["VadFactory"]


class VadFactory:
    """Builds loaded per-session detectors for ``config``.

    Args:
        config: the VAD settings every session uses.
    """

    def __init__(self, config: VadConfig) -> None:
        self.config = config
        self._silero: Any = None

    def load(self) -> None:
        """Load the shared Silero model (if the backend uses it) and check every backend.

        Raises:
            BackendNotInstalled: onnxruntime or webrtcvad is missing (names the extra).
            SileroModelNotFound: no installed package ships the Silero model.
        """
        if vad_backend(self.config.backend).silero and self._silero is None:
            from ..vad.silero import open_session

            self._silero = open_session()
        self.create().close()  # fail at start, not at the first client, if a backend is missing

    def create(self) -> VoiceActivityDetector:
        """Return a new loaded detector for one session (quick: no model load)."""
        vad = create_vad(self.config, silero_session=self._silero)
        vad.load()
        return vad
