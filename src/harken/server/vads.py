"""Voice activity detectors for server sessions, sharing one Silero model.

Every session needs its own detector (each keeps its stream's state), but the Silero ONNX
model itself is stateless: the recurrent state is an input and an output of each call. So
:class:`VadFactory` loads one ``onnxruntime.InferenceSession`` when the server starts and
gives each session a :class:`~harken.vad.silero.SileroVad` that runs on it. A new session
then costs no model load (no file read, no thread, ~no memory), which keeps connection
churn cheap.

Thread: :meth:`VadFactory.load` blocks (~0.1 s; the server runs it on a worker thread);
:meth:`VadFactory.create` is quick and runs on the server's event loop.
"""

from __future__ import annotations

from typing import Any

from ..config import VadConfig
from ..errors import BackendNotInstalled
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

    @property
    def uses_silero(self) -> bool:
        """True when the backend needs the Silero model."""
        return self.config.backend in ("silero", "webrtc+silero")

    def load(self) -> None:
        """Load the shared Silero model (if the backend uses it) and check every backend.

        Raises:
            BackendNotInstalled: onnxruntime or webrtcvad is missing (names the extra).
            SileroModelNotFound: no installed package ships the Silero model.
        """
        if self.uses_silero and self._silero is None:
            try:
                import onnxruntime
            except ImportError as exc:
                raise BackendNotInstalled("onnxruntime", "silero", "The Silero VAD") from exc
            from ..vad.silero import find_silero_model

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._silero = onnxruntime.InferenceSession(
                find_silero_model(), sess_options=options, providers=["CPUExecutionProvider"])
        self.create().close()  # fail at start, not at the first client, if a backend is missing

    def create(self) -> VoiceActivityDetector:
        """Return a new loaded detector for one session (quick: no model load)."""
        cfg = self.config
        vad: VoiceActivityDetector
        if self._silero is not None:
            from ..vad.silero import SileroVad

            silero = SileroVad(cfg.silero_threshold, session=self._silero)
            if cfg.backend == "silero":
                vad = silero
            else:
                from ..vad.gated import GatedVad
                from ..vad.webrtc import WebRtcVad

                # The same construction as harken.vad.factory.create_vad.
                vad = GatedVad(WebRtcVad(cfg.webrtc_sensitivity, rule="any10"), silero)
        else:
            vad = create_vad(cfg)
        vad.load()
        return vad
