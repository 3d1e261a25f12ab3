"""Engine registry: maps an engine name to its class and builds engines.

Runs wherever an engine is built, normally in the engine process's main thread. Backend
modules are imported only by :func:`create_engine`; :func:`engine_available` probes with
``importlib.util.find_spec`` and imports nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from ..config import EngineConfig
from ..errors import ConfigError
from .base import TranscriptionEngine

__all__ = ["ENGINES", "create_engine", "engine_available", "resolve_engine"]

ENGINES: dict[str, str] = {
    "faster-whisper": "harken.engine.faster_whisper:FasterWhisperEngine",
    "scripted": "harken.engine.scripted:ScriptedEngine",
}
"""Registry names and the "module:Class" each stands for."""

_REQUIRES: dict[str, str | None] = {
    "faster-whisper": "faster_whisper",
    "scripted": None,
}


def resolve_engine(name: str) -> str:
    """Return the "module:Class" path that ``name`` stands for.

    Args:
        name: a registry name ("faster-whisper", "scripted") or "package.module:Class".

    Raises:
        ConfigError: the name is neither registered nor of the form "package.module:Class".
    """
    if name in ENGINES:
        return ENGINES[name]
    module, sep, attr = name.partition(":")
    if sep and module and attr and all(part.isidentifier() for part in module.split(".")) \
            and attr.isidentifier():
        return name
    raise ConfigError(f"unknown engine {name!r}: use one of {', '.join(sorted(ENGINES))} "
                      "or a class path such as 'mypackage.engines:MyEngine'")


def engine_available(name: str) -> bool:
    """Tell whether the engine ``name`` can be built here, without importing anything.

    For "package.module:Class" only the top-level package is looked for (finding a submodule
    would import its parents). Unknown names are not available.
    """
    try:
        path = resolve_engine(name)
    except ConfigError:
        return False
    if name in _REQUIRES:
        required = _REQUIRES[name]
        return required is None or _module_found(required)
    return _module_found(path.partition(":")[0].split(".")[0])


def _module_found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # e.g. sys.modules[name] is None (import blocked)
        return False


def create_engine(config: EngineConfig) -> TranscriptionEngine:
    """Build (but do not load) the engine that ``config.engine`` names.

    Args:
        config: the engine settings; the class is constructed as ``Class(config)``.

    Returns:
        An engine whose ``load()`` has not been called yet.

    Raises:
        ConfigError: unknown name, a class path that cannot be imported, or a class that does
            not implement load/transcribe/close.
    """
    path = resolve_engine(config.engine)
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"engine {config.engine!r}: cannot import module {module_name!r} "
                          f"({exc})") from exc
    cls: Any = getattr(module, attr, None)
    if cls is None:
        raise ConfigError(f"engine {config.engine!r}: module {module_name!r} has no "
                          f"attribute {attr!r}")
    engine = cls(config)
    if not isinstance(engine, TranscriptionEngine):
        raise ConfigError(f"engine {config.engine!r}: {path} does not implement "
                          "load(), transcribe() and close()")
    return engine
