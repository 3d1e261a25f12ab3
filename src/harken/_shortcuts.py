"""Keyword shortcuts for :class:`~harken.recorder.Recorder`: flat names onto the nested config.

``Recorder(model="base", post_speech_silence_ms=300)`` sets fields of the nested
:class:`~harken.config.RecorderConfig` dataclasses; this module maps each flat name to the
dataclass that owns it. Pure functions, no threads; called on the caller's thread.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import EngineConfig, RealtimeConfig, RecorderConfig, VadConfig
from .errors import ConfigError

__all__ = ["build_config"]

_ENGINE_FIELDS = {f.name for f in dataclasses.fields(EngineConfig)} - {"engine"}
_VAD_FIELDS = {f.name for f in dataclasses.fields(VadConfig)} - {"backend"}
_REALTIME_FIELDS = {f.name for f in dataclasses.fields(RealtimeConfig)}
_RECORDER_FIELDS = {f.name for f in dataclasses.fields(RecorderConfig)} - {
    "engine", "vad", "realtime", "wake"}
_WAKE_KEYS = {  # Recorder keyword -> WakeConfig field
    "wake_words": "words", "wake_backend": "backend", "wake_sensitivity": "sensitivity",
    "wake_timeout_s": "timeout_s", "wake_activation_delay_s": "activation_delay_s",
}


def build_config(config: RecorderConfig | None, settings: dict[str, Any]) -> RecorderConfig:
    """Apply keyword shortcuts (``model="base"``, ``post_speech_silence_ms=300``, ...) to a config.

    ``engine`` names the engine backend and ``vad`` the VAD backend; ``wake_words``,
    ``wake_backend``, ``wake_sensitivity``, ``wake_timeout_s`` and
    ``wake_activation_delay_s`` set :class:`~harken.config.WakeConfig`. Unknown names raise
    ConfigError listing the valid ones.
    """
    config = config or RecorderConfig()
    engine: dict[str, Any] = {}
    vad: dict[str, Any] = {}
    realtime: dict[str, Any] = {}
    wake: dict[str, Any] = {}
    top: dict[str, Any] = {}
    unknown = []
    for key, value in settings.items():
        if key == "engine":
            engine["engine"] = value
        elif key == "vad":
            vad["backend"] = value
        elif key in _ENGINE_FIELDS:
            engine[key] = value
        elif key in _VAD_FIELDS:
            vad[key] = value
        elif key in _REALTIME_FIELDS:
            realtime[key] = value
        elif key in _WAKE_KEYS:
            wake[_WAKE_KEYS[key]] = value
        elif key in _RECORDER_FIELDS:
            top[key] = value
        else:
            unknown.append(key)
    if unknown:
        valid = sorted(_ENGINE_FIELDS | _VAD_FIELDS | _REALTIME_FIELDS | _RECORDER_FIELDS
                       | set(_WAKE_KEYS) | {"engine", "vad"})
        raise ConfigError(f"unknown Recorder option(s): {', '.join(sorted(unknown))}. "
                          f"Valid options: {', '.join(valid)}")
    if engine:
        top["engine"] = dataclasses.replace(config.engine, **engine)
    if vad:
        top["vad"] = dataclasses.replace(config.vad, **vad)
    if realtime:
        top["realtime"] = dataclasses.replace(config.realtime, **realtime)
    if wake:
        top["wake"] = dataclasses.replace(config.wake, **wake)
    return dataclasses.replace(config, **top) if top else config
