"""Voice activity detectors (and turn models) for server sessions, sharing one model each.

Every session needs its own detector (each keeps its stream's state), but the Silero ONNX
model is stateless, so :class:`VadFactory` loads one session of it when the server starts
and :func:`~harken.vad.factory.create_vad` builds each session's detector on it: a new
session costs no model load, which keeps connection churn cheap. The Smart Turn model
(smart end of turn) is stateless too: one session serves every stream's
:class:`~harken.turn.smart_turn.SmartTurnModel`. It is loaded when the server's own turn
detection is "smart", and otherwise when its file is installed (for the OpenAI realtime
``semantic_vad``); without it ``semantic_vad`` is served with fixed turns.

Thread: :meth:`VadFactory.load` blocks (~0.1-0.3 s; the server runs it on a worker thread);
:meth:`VadFactory.create` and :meth:`VadFactory.turn` are quick and run on the server's
event loop.
"""

from __future__ import annotations

from typing import Any

from ..config import VadConfig
from ..errors import BackendNotInstalled
from ..turn.base import TurnModel
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
        self._turn: Any = None

    def load(self) -> None:
        """Load the shared Silero model (if the backend uses it) and the Smart Turn model
        (if installed), and check every backend.

        Raises:
            BackendNotInstalled: onnxruntime or webrtcvad is missing (names the extra).
            SileroModelNotFound: no installed package ships the Silero model.
            SmartTurnNotFound: turn_detection is "smart" and pipecat-ai is not installed.
        """
        if vad_backend(self.config.backend).silero and self._silero is None:
            from ..vad.silero import open_session

            self._silero = open_session()
        self.create().close()  # fail at start, not at the first client, if a backend is missing
        if self._turn is None:
            from ..turn.smart_turn import load_smart_turn_session

            try:
                self._turn = load_smart_turn_session()
            except BackendNotInstalled:
                if self.config.turn_detection == "smart":
                    raise

    @property
    def smart_turns(self) -> bool:
        """True when the Smart Turn model is loaded (smart turn detection can be served)."""
        return self._turn is not None

    def create(self) -> VoiceActivityDetector:
        """Return a new loaded detector for one session (quick: no model load)."""
        vad = create_vad(self.config, silero_session=self._silero)
        vad.load()
        return vad

    def turn(self, config: VadConfig) -> TurnModel | None:
        """The turn model a session with ``config`` needs (None for fixed turns); quick."""
        if config.turn_detection != "smart" or self._turn is None:
            return None
        from ..turn.smart_turn import SmartTurnModel

        model = SmartTurnModel(session=self._turn)
        model.load()
        return model
