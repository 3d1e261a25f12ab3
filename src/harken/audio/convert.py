"""Conversion of incoming audio to harken's internal format, and back to 16-bit PCM.

Everything inside harken is float32 mono in [-1, 1]; this module turns what users and devices
hand us (int16 / float arrays, interleaved or 2-D multi-channel audio, raw PCM16, float32 or
G.711 mu-law / A-law bytes) into that, and rejects what cannot be audio with an
:class:`~harken.errors.AudioFormatError` that says what was wrong and what is accepted.

Pure numpy, no state, no I/O: safe to call from any thread (it runs on the caller's thread).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from ..errors import AudioFormatError

__all__ = [
    "ENCODINGS",
    "AudioInput",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "alaw_to_float32",
    "check_sample_rate",
    "float32_to_pcm16",
    "to_float32_mono",
    "ulaw_to_float32",
]

AudioInput: TypeAlias = "NDArray[Any] | bytes | bytearray | memoryview"
"""What :func:`to_float32_mono` accepts."""

MIN_SAMPLE_RATE = 4000
"""The lowest sample rate harken accepts, in Hz."""
MAX_SAMPLE_RATE = 384000
"""The highest sample rate harken accepts, in Hz."""

_CLIP_LIMIT = 1.5
"""Float peaks above this are taken to be int16 values passed as float, not clipping."""

_ENCODING_ALIASES = {
    "pcm16": "pcm16",
    "s16le": "pcm16",
    "int16": "pcm16",
    "float32": "float32",
    "f32le": "float32",
    "ulaw": "ulaw",
    "mulaw": "ulaw",
    "u-law": "ulaw",
    "mu-law": "ulaw",
    "alaw": "alaw",
    "a-law": "alaw",
}
ENCODINGS = ("pcm16", "float32", "ulaw", "alaw")
"""The canonical byte encodings; "mulaw" is accepted as an alias of "ulaw"."""

_ACCEPTED_DTYPES = "int16, float32 or float64"
_MAX_CHANNELS = 64


def _build_ulaw_table() -> NDArray[np.float32]:
    """Decode every G.711 mu-law byte to a float in [-1, 1] (int16 value / 32768)."""
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    values = np.where(codes & 0x80, -magnitude, magnitude)
    return (values / 32768.0).astype(np.float32)


def _build_alaw_table() -> NDArray[np.float32]:
    """Decode every G.711 A-law byte to a float in [-1, 1] (int16 value / 32768)."""
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    values = np.where(codes & 0x80, magnitude, -magnitude)
    return (values / 32768.0).astype(np.float32)


# 256-entry lookup tables: 2 KiB in all, built from arithmetic at import (no I/O).
_ULAW_TABLE = _build_ulaw_table()
_ALAW_TABLE = _build_alaw_table()


def ulaw_to_float32(data: bytes | bytearray | memoryview) -> NDArray[np.float32]:
    """Decode G.711 mu-law bytes (one sample per byte) to float32 in [-1, 1].

    Args:
        data: mu-law bytes, one byte per sample.

    Returns:
        One float32 sample per byte; 0xFF and 0x7F decode to 0.0.
    """
    codes = np.frombuffer(data, dtype=np.uint8)
    return _ULAW_TABLE[codes]


def alaw_to_float32(data: bytes | bytearray | memoryview) -> NDArray[np.float32]:
    """Decode G.711 A-law bytes (one sample per byte) to float32 in [-1, 1].

    Args:
        data: A-law bytes, one byte per sample.

    Returns:
        One float32 sample per byte; 0xD5 decodes to +8/32768, 0x55 to -8/32768.
    """
    codes = np.frombuffer(data, dtype=np.uint8)
    return _ALAW_TABLE[codes]


def check_sample_rate(rate: object) -> int:
    """Validate a sample rate and return it as an int.

    Args:
        rate: the rate in Hz: an int, or a float with an integral value (e.g. 44100.0).

    Returns:
        The rate in Hz as an int.

    Raises:
        AudioFormatError: the rate is not a whole number from 4000 to 384000 Hz.
    """
    value: int | None = None
    if isinstance(rate, (bool, np.bool_)):
        value = None
    elif isinstance(rate, numbers.Integral):
        value = int(rate)
    elif isinstance(rate, numbers.Real):
        as_float = float(rate)
        if math.isfinite(as_float) and as_float.is_integer():
            value = int(as_float)
    if value is None or not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise AudioFormatError(
            f"sample_rate must be a whole number of Hz from {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE}, got {rate!r}"
        )
    return value


def _check_channels(channels: object) -> int:
    if (
        isinstance(channels, (bool, np.bool_))
        or not isinstance(channels, numbers.Integral)
        or not 1 <= int(channels) <= _MAX_CHANNELS
    ):
        raise AudioFormatError(
            f"channels must be an int from 1 to {_MAX_CHANNELS}, got {channels!r}"
        )
    return int(channels)


def _normalise_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    if not isinstance(encoding, str) or encoding.lower() not in _ENCODING_ALIASES:
        raise AudioFormatError(
            f"encoding must be one of {', '.join(ENCODINGS)} (or 'mulaw'), got {encoding!r}"
        )
    return _ENCODING_ALIASES[encoding.lower()]


def _decode_bytes(raw: bytes | bytearray | memoryview, encoding: str) -> NDArray[Any]:
    """Interpret raw bytes; returns int16, float32 (unchecked) or decoded G.711 samples."""
    view = memoryview(raw).cast("B")
    if encoding == "pcm16":
        if len(view) % 2:
            raise AudioFormatError(
                f"pcm16 audio needs an even number of bytes (2 per sample), got {len(view)}"
            )
        return np.frombuffer(view, dtype="<i2")
    if encoding == "float32":
        if len(view) % 4:
            raise AudioFormatError(
                f"float32 audio needs a multiple of 4 bytes (4 per sample), got {len(view)}"
            )
        return np.frombuffer(view, dtype="<f4")
    if encoding == "ulaw":
        return ulaw_to_float32(view)
    return alaw_to_float32(view)


def _check_array(data: NDArray[Any], encoding: str | None) -> NDArray[Any]:
    """Accept an int16 / float32 / float64 array (or uint8 G.711 codes with an encoding)."""
    kind, size = data.dtype.kind, data.dtype.itemsize
    if encoding in ("ulaw", "alaw"):
        if kind != "u" or size != 1:
            raise AudioFormatError(
                f"{encoding} audio must be bytes or a uint8 array, got an array of {data.dtype}"
            )
        return _decode_bytes(np.ascontiguousarray(data).tobytes(), encoding).reshape(data.shape)
    is_int16 = kind == "i" and size == 2
    is_float = kind == "f" and size in (4, 8)
    if not (is_int16 or is_float):
        raise AudioFormatError(
            f"audio arrays must have dtype {_ACCEPTED_DTYPES}, got {data.dtype}; "
            "convert it first (e.g. int32 PCM: (x >> 16).astype(np.int16))"
        )
    if encoding == "pcm16" and not is_int16:
        raise AudioFormatError(f"encoding 'pcm16' needs an int16 array, got {data.dtype}")
    if encoding == "float32" and not is_float:
        raise AudioFormatError(f"encoding 'float32' needs a float array, got {data.dtype}")
    return data


def _check_float_values(x: NDArray[np.floating[Any]], channels: int) -> NDArray[np.float32]:
    """Reject NaN/inf and int16-scaled floats; clip small overshoots; return float32."""
    finite = np.isfinite(x)
    if not finite.all():
        first = int(np.flatnonzero(~finite.reshape(-1))[0])
        raise AudioFormatError(
            f"audio contains NaN/inf at sample {first // channels}; "
            "samples must be finite floats in [-1, 1]"
        )
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > _CLIP_LIMIT:
        raise AudioFormatError(
            f"float audio must lie in [-1, 1], but its peak is {peak:.6g}; this looks like "
            "int16 values passed as float: pass an int16 array, or divide by 32768"
        )
    out = np.array(x, dtype=np.float32, copy=True)
    if peak > 1.0:
        np.clip(out, -1.0, 1.0, out=out)
    return out


def to_float32_mono(
    data: AudioInput,
    *,
    encoding: str | None = None,
    channels: int = 1,
) -> NDArray[np.float32]:
    """Convert audio to float32 mono samples in [-1, 1] at the same sample rate.

    Arrays:
        * int16 is scaled by 1/32768; float32 and float64 are taken as they are (in [-1, 1]).
          Peaks in (1, 1.5] are clipped to [-1, 1]; a larger peak is an error, since it is
          almost always int16 values passed as float.
        * A 2-D array is ``(frames, channels)`` (the layout of sounddevice, soundfile and
          ``wave``) and is averaged to mono; ``(channels, frames)`` is not detected, transpose
          it first. ``channels`` must then be 1 or equal ``data.shape[1]``.
        * A 1-D array with ``channels > 1`` is interleaved (L R L R ...).
        * A uint8 array is accepted only with ``encoding="ulaw"`` or ``"alaw"``.

    Bytes (bytes, bytearray, memoryview):
        ``encoding`` is "pcm16" (default, little-endian int16), "float32" (little-endian),
        "ulaw" (alias "mulaw", G.711 mu-law, 1 byte per sample) or "alaw" (G.711 A-law).
        Multi-channel bytes are interleaved.

    Args:
        data: the audio, as an array or bytes.
        encoding: how to read bytes; for arrays, None or one matching the dtype.
        channels: the number of interleaved channels (1 to 64).

    Returns:
        A new, C-contiguous float32 1-D array of ``frames`` samples; empty for empty input.

    Raises:
        AudioFormatError: an unsupported dtype or encoding, a byte or sample count that does
            not fit the encoding or channel count, NaN/inf samples, or floats far outside
            [-1, 1].
    """
    n_channels = _check_channels(channels)
    codec = _normalise_encoding(encoding)
    if isinstance(data, (bytes, bytearray, memoryview)):
        x: NDArray[Any] = _decode_bytes(data, codec or "pcm16")
    elif isinstance(data, np.ndarray):
        x = _check_array(data, codec)
    else:
        raise AudioFormatError(
            "audio must be a numpy array or bytes/bytearray/memoryview, "
            f"got {type(data).__name__}"
        )

    if x.ndim == 2:
        if n_channels not in (1, x.shape[1]):
            raise AudioFormatError(
                f"a 2-D array is (frames, channels); its shape {x.shape} has {x.shape[1]} "
                f"channels but channels={n_channels} was given"
            )
        n_channels = x.shape[1]
        if n_channels < 1:
            raise AudioFormatError(f"a 2-D audio array needs at least 1 channel, got {x.shape}")
    elif x.ndim == 1:
        if x.size % n_channels:
            raise AudioFormatError(
                f"interleaved audio with {n_channels} channels needs a sample count that is a "
                f"multiple of {n_channels}, got {x.size} samples"
            )
        x = x.reshape(-1, n_channels)
    else:
        raise AudioFormatError(
            f"audio arrays must be 1-D, or 2-D (frames, channels), got shape {x.shape}"
        )

    if x.dtype.kind == "i":
        samples = x.astype(np.float32) / np.float32(32768.0)
    else:
        samples = _check_float_values(x, n_channels)
    if n_channels == 1:
        return np.ascontiguousarray(samples[:, 0])
    return np.ascontiguousarray(samples.mean(axis=1, dtype=np.float32))


def float32_to_pcm16(samples: NDArray[np.floating[Any]]) -> bytes:
    """Encode float samples in [-1, 1] as little-endian 16-bit PCM bytes.

    Values are scaled by 32768, rounded and clipped to the int16 range, so int16 audio read
    with :func:`to_float32_mono` comes back byte for byte.

    Args:
        samples: 1-D float32 or float64 samples (any rate; the rate is not changed).

    Returns:
        ``2 * len(samples)`` bytes.

    Raises:
        AudioFormatError: the input is not a 1-D float array, or contains NaN/inf.
    """
    if not isinstance(samples, np.ndarray) or samples.dtype.kind != "f" or samples.ndim != 1:
        raise AudioFormatError(
            "float32_to_pcm16 needs a 1-D float32 or float64 array, got "
            f"{getattr(samples, 'dtype', type(samples).__name__)} "
            f"with shape {getattr(samples, 'shape', None)}"
        )
    finite = np.isfinite(samples)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise AudioFormatError(f"audio contains NaN/inf at sample {first}")
    scaled = np.rint(samples.astype(np.float64) * 32768.0)
    np.clip(scaled, -32768, 32767, out=scaled)
    return scaled.astype("<i2").tobytes()
