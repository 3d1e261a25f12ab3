"""The protocol every speech synthesis engine implements, and the factory that builds one.

An engine runs inside the speech engine program (:mod:`harken.speak.child`), on its main
thread, one sentence at a time. A user's own engine is named "package.module:Class"; the
class is imported there and only there, so the user's main module never loads it::

    class MyEngine:
        def __init__(self, voice: str, **options): ...      # store settings only
        sample_rate: int                                     # Hz, valid after load()
        def load(self) -> None: ...                          # load the model
        def synthesize(self, text: str, speed: float) -> Iterable[np.ndarray]: ...
        def close(self) -> None: ...

``synthesize`` yields mono audio (float32 in [-1, 1], or int16) at ``sample_rate``, in as
many chunks as it likes; the program stops iterating early when the sentence is cancelled.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ...errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..voices import VoiceSpec

__all__ = ["SynthesisEngine", "create_synthesis_engine", "to_float32"]


@runtime_checkable
class SynthesisEngine(Protocol):
    """Text in, audio chunks out (see the module docstring)."""

    sample_rate: int
    """The rate of the audio ``synthesize`` yields, in Hz (valid after ``load()``)."""

    def load(self) -> None:
        """Load the model (blocking)."""

    def synthesize(self, text: str, speed: float) -> Iterable[NDArray[Any]]:
        """Yield the audio of ``text`` spoken at ``speed`` (1.0 normal, 2.0 twice as fast)."""

    def close(self) -> None:
        """Free the model."""


def to_float32(chunk: NDArray[Any]) -> NDArray[np.float32]:
    """Turn an engine's chunk (int16, or float in [-1, 1]) into 1-D float32.

    Raises:
        ValueError: the chunk is not 1-D integer or float audio.
    """
    array = np.asarray(chunk)
    if array.ndim != 1:
        array = array.reshape(-1)
    if array.dtype == np.int16:
        scaled: NDArray[np.float32] = array.astype(np.float32) / np.float32(32768.0)
        return scaled
    if array.dtype.kind != "f":
        raise ValueError(f"an engine yielded {array.dtype} audio; int16 or float is needed")
    out = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    clipped: NDArray[np.float32] = np.clip(out, -1.0, 1.0)
    return clipped


def create_synthesis_engine(spec: VoiceSpec) -> SynthesisEngine:
    """Build (not load) the engine a spec names.

    Raises:
        ConfigError: a plug-in cannot be imported or is not a class with the protocol's
            methods.
    """
    if spec.engine == "piper":
        from .piper import PiperEngine

        return PiperEngine(spec.voice, **spec.options)
    if spec.engine == "espeak":
        from .espeak import EspeakEngine

        return EspeakEngine(spec.voice, **spec.options)
    if spec.engine == "tone":
        from .tone import ToneEngine

        return ToneEngine(spec.voice, **spec.options)
    module_name, _, class_name = spec.engine.partition(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the speech engine {spec.engine!r}: {exc}") from exc
    engine = cls(spec.voice, **spec.options)
    missing = [name for name in ("load", "synthesize", "close") if not callable(
        getattr(engine, name, None))]
    if missing:
        raise ConfigError(f"the speech engine {spec.engine!r} lacks {', '.join(missing)}()")
    return engine  # type: ignore[no-any-return]
