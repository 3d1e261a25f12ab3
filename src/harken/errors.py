"""Exceptions raised by harken.

Every exception harken raises derives from :class:`HarkenError`::

    HarkenError
    ├── ConfigError (also ValueError)           invalid option; raised at construction
    ├── AudioFormatError (also ValueError)      audio that cannot be used: dtype, NaN, rate, ...
    ├── BackendNotInstalled (also ImportError)  the message names the extra to install
    │   └── ModelFileNotFound                   a model file a package ships was not found
    │       ├── SileroModelNotFound             no installed package ships the Silero model
    │       └── SmartTurnNotFound               the pipecat-ai wheel (Smart Turn) is missing
├── CudaUnavailable (also RuntimeError)    device='cuda': no GPU, driver, cuBLAS or cuDNN
    ├── AudioSourceError                        device open/read failure, source backlog overflow
    ├── WorkerError
    │   ├── WorkerStartTimeout                  the engine process did not become ready in time
    │   ├── WorkerCrashed                       the engine process died (exit code in the message)
    │   └── EngineError                         the engine raised; original type name kept
    ├── ProtocolError                           malformed frame on the worker or server wire
    ├── ServerBusy                              too many sessions, or finals waiting for one
    │   └── EngineUnavailable                   the engine failed; being restarted (or given up)
    ├── PhoneError                              the SIP program failed: port in use, it died
    └── LifecycleError (also RuntimeError)      start twice, feed after close, ...
"""

from __future__ import annotations

__all__ = [
    "AudioFormatError",
    "AudioSourceError",
    "BackendNotInstalled",
    "ConfigError",
    "CudaUnavailable",
    "EngineError",
    "EngineUnavailable",
    "HarkenError",
    "LifecycleError",
    "ModelFileNotFound",
    "PhoneError",
    "ProtocolError",
    "ServerBusy",
    "SileroModelNotFound",
    "SmartTurnNotFound",
    "WorkerCrashed",
    "WorkerError",
    "WorkerStartTimeout",
]


class HarkenError(Exception):
    """Base class of every error harken raises."""


class ConfigError(HarkenError, ValueError):
    """An option has a value harken cannot use."""


class AudioFormatError(HarkenError, ValueError):
    """Audio handed to harken cannot be interpreted (dtype, NaN/inf, sample rate, encoding)."""


class BackendNotInstalled(HarkenError, ImportError):
    """An optional package is missing; the message says which extra installs it."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f'Install it with: pip install "harken[{extra}]"'
        )


class ModelFileNotFound(BackendNotInstalled):
    """A model file that ships inside a package was not given and not found.

    Attributes:
        searched: the file paths that were tried.
    """

    def __init__(self, package: str, extra: str, message: str, searched: list[str]) -> None:
        self.package = package
        self.extra = extra
        self.searched = searched
        looked = "; ".join(searched) if searched else "no candidate package is installed"
        ImportError.__init__(self, f"{message} Looked in: {looked}")


class SileroModelNotFound(ModelFileNotFound):
    """No Silero ONNX file was given and none of the packages that ship one is installed."""

    def __init__(self, searched: list[str]) -> None:
        super().__init__(
            "faster-whisper", "faster-whisper",
            "The Silero VAD needs its ONNX model file and none was found. It ships in the "
            "'faster-whisper' package (pip install \"harken[faster-whisper]\") and in the "
            "'silero-vad' package (pip install --no-deps silero-vad; without --no-deps it "
            "pulls in torch); or pass model_path=.", searched)


class SmartTurnNotFound(ModelFileNotFound):
    """No Smart Turn ONNX file was given and the pipecat-ai wheel that ships it is missing."""

    def __init__(self, searched: list[str]) -> None:
        super().__init__(
            "pipecat-ai", "turn",
            "Smart turn detection needs the Smart Turn v3.2 ONNX file, which ships in the "
            "'pipecat-ai' 1.14.0 wheel; install it without its dependencies: pip install "
            "--no-deps pipecat-ai==1.14.0 (or pass model_path=).", searched)


class CudaUnavailable(HarkenError, RuntimeError):
    """``device="cuda"`` cannot work here; the message names the missing library, the
    version expected and the pip package that provides it.
    """


class AudioSourceError(HarkenError):
    """An audio source failed: device missing, stream error, backlog overflow."""


class WorkerError(HarkenError):
    """The engine process failed."""


class WorkerStartTimeout(WorkerError):
    """The engine process did not report ready within the start timeout."""


class WorkerCrashed(WorkerError):
    """The engine process exited unexpectedly."""


class EngineError(WorkerError):
    """The transcription engine raised an exception inside the engine process.

    Attributes:
        error_type: the name of the original exception class, e.g. ``"FileNotFoundError"``.
    """

    def __init__(self, message: str, error_type: str = "Exception") -> None:
        self.error_type = error_type
        super().__init__(f"{error_type}: {message}")


class ProtocolError(HarkenError):
    """A message on the worker or server wire was malformed."""


class ServerBusy(HarkenError):
    """The server has no room: too many sessions, or too many finals waiting for one."""


class EngineUnavailable(ServerBusy):
    """The server's engine process failed; it is being restarted (or the server gave up)."""


class PhoneError(HarkenError):
    """The SIP side of a phone agent failed (could not listen, the SIP program died, ...)."""


class LifecycleError(HarkenError, RuntimeError):
    """A method was called in a state that does not allow it (e.g. feed after close)."""
