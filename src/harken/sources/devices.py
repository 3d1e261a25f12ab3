"""Audio input devices: listing them (for ``harken devices``) and choosing one by index or name.

sounddevice (and with it PortAudio) is imported only inside these functions, on the caller's
thread. :func:`resolve_input_device` is pure and works on a list of device dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ..errors import AudioSourceError, BackendNotInstalled

__all__ = ["import_sounddevice", "list_input_devices", "resolve_input_device"]


def import_sounddevice() -> ModuleType:
    """Import sounddevice, turning its failures into harken errors.

    Returns:
        The ``sounddevice`` module.

    Raises:
        BackendNotInstalled: the sounddevice package is missing (extra "mic").
        AudioSourceError: sounddevice is installed but the PortAudio library is not.
    """
    try:
        import sounddevice
    except ImportError as exc:
        raise BackendNotInstalled("sounddevice", "mic", "The microphone source") from exc
    except OSError as exc:  # "PortAudio library not found"
        raise AudioSourceError(
            f"sounddevice could not load the PortAudio library ({exc}); install it "
            "(Debian/Ubuntu: apt-get install libportaudio2)"
        ) from exc
    module: ModuleType = sounddevice
    return module


def list_input_devices() -> list[dict[str, Any]]:
    """List the devices that can record.

    Returns:
        One dict per input device: ``index`` (int, PortAudio's device index), ``name`` (str),
        ``channels`` (int, the most input channels), ``default_samplerate`` (float, Hz) and
        ``is_default`` (bool, the system's default input device).

    Raises:
        BackendNotInstalled: sounddevice is missing.
        AudioSourceError: PortAudio is missing or cannot list devices.
    """
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        default_input = _default_input_index(sd)
    except sd.PortAudioError as exc:
        raise AudioSourceError(f"cannot list audio devices: {exc}") from exc
    return [
        {
            "index": int(dev["index"]),
            "name": str(dev["name"]),
            "channels": int(dev["max_input_channels"]),
            "default_samplerate": float(dev["default_samplerate"]),
            "is_default": int(dev["index"]) == default_input,
        }
        for dev in devices
        if int(dev["max_input_channels"]) > 0
    ]


def _default_input_index(sd: Any) -> int:
    """The default input device index, or -1 when there is none."""
    default = sd.default.device
    try:
        index = int(default[0])
    except (TypeError, IndexError):
        index = int(default)
    if index < 0:
        try:
            index = int(sd.query_devices(kind="input")["index"])
        except (sd.PortAudioError, ValueError, KeyError):
            index = -1
    return index


def _describe(devices: Sequence[dict[str, Any]]) -> str:
    if not devices:
        return "there are no input devices"
    return "input devices: " + "; ".join(
        f"{d['index']}: {d['name']!r}{' (default)' if d.get('is_default') else ''}"
        for d in devices
    )


def resolve_input_device(device: int | str | None, devices: Sequence[dict[str, Any]]) -> int:
    """Choose an input device from ``devices`` (as returned by :func:`list_input_devices`).

    Args:
        device: None for the default input device; an int for a device index; a str for a
            case-insensitive substring of a device name (an exact name match wins, then the
            first device containing it).
        devices: the input devices.

    Returns:
        The chosen device's index.

    Raises:
        AudioSourceError: no input device matches; the message lists the input devices.
    """
    if device is None:
        for dev in devices:
            if dev.get("is_default"):
                return int(dev["index"])
        if devices:
            return int(devices[0]["index"])
        raise AudioSourceError("no input device is available; " + _describe(devices))
    if isinstance(device, int) and not isinstance(device, bool):
        for dev in devices:
            if int(dev["index"]) == device:
                return device
        raise AudioSourceError(
            f"audio device {device} does not exist or cannot record; {_describe(devices)}"
        )
    needle = str(device).strip().lower()
    exact = [d for d in devices if str(d["name"]).lower() == needle]
    partial = [d for d in devices if needle in str(d["name"]).lower()]
    if exact or partial:
        return int((exact or partial)[0]["index"])
    raise AudioSourceError(f"no input device name contains {device!r}; {_describe(devices)}")
