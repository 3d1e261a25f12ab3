"""Whisper-style log-mel features for the Smart Turn model, in numpy (no torch, no
transformers).

The recipe is Whisper's front end, as Smart Turn v3 was trained on it: the waveform (exactly
8 s at 16 kHz) is scaled to zero mean and unit variance; a centred short-time Fourier
transform (reflect padding, 400-sample periodic Hann window, hop 160) gives a power
spectrum; 80 triangular mel filters on the Slaney scale, each normalised to unit area,
project it; then ``log10`` (floor 1e-10), a dynamic range of 8 decades below the peak, and
``(x + 4) / 4``. The last STFT frame is dropped, so 8 s give 800 frames.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

__all__ = ["WINDOW_SAMPLES", "log_mel"]

WINDOW_SAMPLES = 8 * 16000
"""Samples the model hears: the last 8 s at 16 kHz."""

_N_FFT = 400
_HOP = 160
_N_MELS = 80
_RATE = 16000


def _slaney_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
    """Hz to mel on the Slaney scale: linear (200/3 Hz per mel) below 1 kHz, log above."""
    linear = hz * 3.0 / 200.0
    log = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(hz >= 1000.0, log, linear)


def _slaney_hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    """Mel on the Slaney scale to Hz (the inverse of :func:`_slaney_mel`)."""
    linear = mel * 200.0 / 3.0
    log = 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0)
    return np.where(mel >= 15.0, log, linear)


@lru_cache(maxsize=1)
def _filters() -> NDArray[np.float64]:
    """The (80, 201) mel filter matrix, built once."""
    bins = np.linspace(0.0, _RATE / 2, _N_FFT // 2 + 1)
    edges = _slaney_hz(np.linspace(_slaney_mel(np.array(0.0)),
                                   _slaney_mel(np.array(_RATE / 2.0)), _N_MELS + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    tri = np.clip(np.minimum(rising, falling), 0.0, None)
    filters: NDArray[np.float64] = tri * (2.0 / (upper - lower))  # unit area per filter
    return filters


@lru_cache(maxsize=1)
def _window() -> NDArray[np.float64]:
    n = np.arange(_N_FFT, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / _N_FFT)  # periodic Hann


def log_mel(audio: NDArray[np.float32]) -> NDArray[np.float32]:
    """Return the (80, 800) float32 features of exactly :data:`WINDOW_SAMPLES` samples.

    Args:
        audio: 1-D float32 samples at 16 kHz, already cut or left-padded to 8 s.

    Raises:
        ValueError: ``audio`` is not 1-D with WINDOW_SAMPLES samples.
    """
    if audio.ndim != 1 or len(audio) != WINDOW_SAMPLES:
        raise ValueError(f"log_mel needs 1-D audio of {WINDOW_SAMPLES} samples, got shape "
                         f"{audio.shape}")
    x = audio.astype(np.float32)
    x = (x - x.mean()) / np.sqrt(x.var() + np.float32(1e-7))
    padded = np.pad(x.astype(np.float64), _N_FFT // 2, mode="reflect")
    n_frames = 1 + (len(padded) - _N_FFT) // _HOP
    starts = np.arange(n_frames - 1) * _HOP  # the last frame is dropped
    frames = padded[starts[:, None] + np.arange(_N_FFT)[None, :]]
    power = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2  # (800, 201)
    mel = np.log10(np.maximum(_filters() @ power.T, 1e-10))  # (80, 800)
    mel = np.maximum(mel, mel.max() - 8.0)
    features: NDArray[np.float32] = ((mel + 4.0) / 4.0).astype(np.float32)
    return features
