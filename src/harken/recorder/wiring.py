"""Builds the Recorder's parts at start(): its audio source, VAD, turn model and wake word
backend.

Backends are imported here, inside the functions, so that importing the recorder imports
none of them. :class:`InboxSink` is what the recorder hands its source: it runs on the
source's own thread and only puts audio and end/error notices into the inbox.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..config import VadConfig, WakeConfig
from ..errors import ConfigError
from ..sources.base import AudioSource
from ..turn.base import TurnModel
from ..vad.base import VoiceActivityDetector
from ..wake.base import PhraseMatcher, WakeWordDetector
from .inbox import Inbox

__all__ = ["SOURCE_NAMES", "InboxSink", "build_wake", "is_realtime", "load_turn", "load_vad",
           "make_source"]

_FEED_TIMEOUT_S = 30.0
"""Seconds a source may block on a full backlog before it gets an AudioSourceError."""

SOURCE_NAMES = ("mic", "microphone", "push")
"""The names ``source=`` accepts besides a file path; all of them are real-time sources."""


def make_source(source: AudioSource | str | Path, input_device: int | str | None) -> AudioSource:
    """Return the source a Recorder's ``source=`` names (an AudioSource is returned as is).

    Raises:
        ConfigError: ``source`` is neither a name, a path nor an AudioSource.
    """
    if not isinstance(source, (str, Path)):
        if not isinstance(source, AudioSource):
            raise ConfigError(f"source must be 'mic', 'push', a file path or an AudioSource, "
                              f"got {source!r}")
        return source
    if source in ("mic", "microphone"):
        from ..sources.microphone import MicrophoneSource

        return MicrophoneSource(input_device)
    if source == "push":
        from ..sources.push import PushSource

        return PushSource()
    from ..sources.file import FileSource

    return FileSource(str(source))


def is_realtime(source: AudioSource | str | Path) -> bool:
    """True when ``source=`` delivers audio at its own pace (a microphone, pushed audio).

    A file is read as fast as the engine allows, so the recorder holds it back while
    finals pile up; an AudioSource says which it is with its ``realtime`` attribute.
    """
    if isinstance(source, (str, Path)):
        return source in SOURCE_NAMES
    return bool(getattr(source, "realtime", True))


def load_vad(config: VadConfig, detector: VoiceActivityDetector | None) -> VoiceActivityDetector:
    """Build the VAD from ``config`` unless ``detector`` is given, and load it (blocking)."""
    if detector is not None:
        vad = detector
    else:
        from ..vad.factory import create_vad

        vad = create_vad(config)
    vad.load()
    return vad


def load_turn(config: VadConfig) -> TurnModel | None:
    """Load the Smart Turn model when ``config.turn_detection`` is "smart" (blocking ~0.1 s).

    Raises:
        BackendNotInstalled: onnxruntime is missing.
        SmartTurnNotFound: the pipecat-ai wheel that ships the model is not installed (the
            message says how to install it).
    """
    if config.turn_detection != "smart":
        return None
    from ..turn.smart_turn import SmartTurnModel

    model = SmartTurnModel()
    model.load()
    return model


def build_wake(config: WakeConfig) -> tuple[WakeWordDetector | PhraseMatcher | None,
                                            WakeWordDetector | None]:
    """Build the wake word backend named by ``config`` (None when wake words are off).

    Returns:
        The backend for the pipeline, and the same object again when it is a frame detector
        the caller must ``load()`` (blocking) and later ``close()``; else None.

    Raises:
        BackendNotInstalled, ConfigError: the backend's package or model file is missing
            (the message names it).
    """
    if not config.enabled:
        return None, None
    from ..wake.factory import build_wake_backend

    wake = build_wake_backend(config.backend, config.words, config.sensitivity)
    if isinstance(wake, WakeWordDetector):
        return wake, wake
    return wake, None


class InboxSink:
    """The AudioSink a recorder hands its source (runs on the source's thread).

    Args:
        inbox: the recorder's inbox; audio waits up to 30 s for room in it.
    """

    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox

    def write(self, samples: NDArray[np.float32]) -> None:
        """Queue 16 kHz float32 mono samples; blocks while the backlog is full."""
        self._inbox.put_audio(samples, _FEED_TIMEOUT_S)

    def end(self) -> None:
        """Report the end of a finite stream (after all its audio)."""
        self._inbox.put_ordered(("end",))

    def error(self, exc: BaseException) -> None:
        """Report a source failure (not fatal to the recorder)."""
        self._inbox.put_control(("error", exc, False, "source"))
