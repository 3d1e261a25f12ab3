"""harken: real-time speech-to-text.

Importing harken does nothing but define names: no threads, processes, files, log handlers
or heavy imports. Public names are resolved lazily on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Recorder": "harken.recorder",
    "AsyncRecorder": "harken.aio",
    "transcribe_file": "harken.files",
    "EngineConfig": "harken.config",
    "RealtimeConfig": "harken.config",
    "WakeConfig": "harken.config",
    "WakeWordDetected": "harken.events",
    "WakeWordTimeout": "harken.events",
    "WakeWordWaiting": "harken.events",
    "RecorderConfig": "harken.config",
    "VadConfig": "harken.config",
    "ErrorEvent": "harken.events",
    "Event": "harken.events",
    "FinalTranscript": "harken.events",
    "PartialTranscript": "harken.events",
    "PauseEnded": "harken.events",
    "PauseStarted": "harken.events",
    "RecorderState": "harken.events",
    "RecordingStarted": "harken.events",
    "RecordingStopped": "harken.events",
    "SpeechEnded": "harken.events",
    "SpeechStarted": "harken.events",
    "StateChanged": "harken.events",
    "TranscriptionStarted": "harken.events",
    "Word": "harken.events",
    "AudioFormatError": "harken.errors",
    "AudioSourceError": "harken.errors",
    "BackendNotInstalled": "harken.errors",
    "ConfigError": "harken.errors",
    "CudaUnavailable": "harken.errors",
    "EngineError": "harken.errors",
    "EngineUnavailable": "harken.errors",
    "HarkenError": "harken.errors",
    "LifecycleError": "harken.errors",
    "ModelFileNotFound": "harken.errors",
    "PhoneError": "harken.errors",
    "ProtocolError": "harken.errors",
    "ServerBusy": "harken.errors",
    "SileroModelNotFound": "harken.errors",
    "SmartTurnNotFound": "harken.errors",
    "WorkerCrashed": "harken.errors",
    "WorkerError": "harken.errors",
    "WorkerStartTimeout": "harken.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:  # pragma: no cover
    from .aio import AsyncRecorder
    from .config import EngineConfig, RealtimeConfig, RecorderConfig, VadConfig, WakeConfig
    from .errors import (
        AudioFormatError,
        AudioSourceError,
        BackendNotInstalled,
        ConfigError,
        CudaUnavailable,
        EngineError,
        EngineUnavailable,
        HarkenError,
        LifecycleError,
        ModelFileNotFound,
        PhoneError,
        ProtocolError,
        ServerBusy,
        SileroModelNotFound,
        SmartTurnNotFound,
        WorkerCrashed,
        WorkerError,
        WorkerStartTimeout,
    )
    from .events import (
        ErrorEvent,
        Event,
        FinalTranscript,
        PartialTranscript,
        PauseEnded,
        PauseStarted,
        RecorderState,
        RecordingStarted,
        RecordingStopped,
        SpeechEnded,
        SpeechStarted,
        StateChanged,
        TranscriptionStarted,
        WakeWordDetected,
        WakeWordTimeout,
        WakeWordWaiting,
        Word,
    )
    from .files import transcribe_file
    from .recorder import Recorder


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
