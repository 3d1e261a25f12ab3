"""Finals of audio that is not one of the compat recorder's recordings.

RealtimeSTT's ``perform_final_transcription(audio_bytes, use_prompt)`` transcribes any audio
a program hands it. The compat recorder's own recordings already have their final on the
way from harken's engine program; other audio goes through :class:`OtherAudio`: a
push-fed :class:`~harken.recorder.Recorder` per "uses the prompt" choice, started on first
use and kept until :meth:`OtherAudio.close`, one transcription at a time.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import RecorderConfig
from ..errors import LifecycleError
from ..events import FinalTranscript
from ..recorder import Recorder
from .recordings import joined
from .tap import SAMPLE_RATE

__all__ = ["OtherAudio", "as_float"]


class OtherAudio:
    """Transcribes audio handed to ``perform_final_transcription`` in engine programs of
    its own.

    Args:
        settings: the compat recorder's harken settings (its wake word ones are not used).
        timeout_s: how long to wait for each final, in s.
    """

    def __init__(self, settings: dict[str, Any], timeout_s: float) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self.recorders: dict[bool, Recorder] = {}
        """The started recorders, by "uses the prompt"."""
        self._busy = threading.Lock()  # one transcription at a time
        self._lock = threading.Lock()  # recorders and closed
        self._closed = False

    def transcribe(self, audio: NDArray[np.float32], use_prompt: bool) -> FinalTranscript:
        """Transcribe ``audio`` (float32, 16 kHz) as one utterance; the initial prompt is
        used when ``use_prompt`` and one is set.

        Raises:
            LifecycleError: after :meth:`close`.
        """
        prompt = use_prompt and self._settings.get("initial_prompt") is not None
        with self._busy:
            rec = self._recorder(prompt)
            rec.start_utterance()
            rec.feed_audio(audio, SAMPLE_RATE)
            rec.end_utterance()
            parts = [rec.next_final(timeout=self._timeout_s)]
            while parts[-1].split:  # longer than max_utterance_s: it comes in pieces
                parts.append(rec.next_final(timeout=self._timeout_s))
        return joined(parts)

    def _recorder(self, prompt: bool) -> Recorder:
        with self._lock:
            if self._closed:
                raise LifecycleError("the recorder was shut down; create a new one")
            rec = self.recorders.get(prompt)
            if rec is None:
                settings = {k: v for k, v in self._settings.items() if not k.startswith("wake_")}
                settings.update(partials=False, early_final=False, min_utterance_ms=0)
                if not prompt:
                    settings["initial_prompt"] = None
                rec = Recorder(RecorderConfig().with_settings(**settings), source="push")
                try:
                    rec.start()
                except BaseException:
                    rec.close()
                    raise
                self.recorders[prompt] = rec
            return rec

    def close(self) -> None:
        """Close the engine programs; idempotent. Later transcriptions raise."""
        with self._lock:
            self._closed = True
            recs = list(self.recorders.values())
        for rec in recs:
            rec.close()


def as_float(audio: Any) -> NDArray[np.float32]:
    """RealtimeSTT audio (float32 in [-1, 1], int16 samples or PCM16 bytes) as float32."""
    if isinstance(audio, (bytes, bytearray, memoryview)):
        return np.frombuffer(audio, "<i2").astype(np.float32) / 32768.0
    arr = np.asarray(audio)
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    return arr.astype(np.float32, copy=False)
