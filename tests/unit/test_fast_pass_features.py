"""The fast pass computes the log-mel of the audio plus 1 s only and fills the rest of the
window with silence's value: the features must equal those of the whole padded window."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from harken.engine.whisper.fast_pass import HOP_SAMPLES, FastPass

DATA = Path(__file__).resolve().parents[1] / "data"


def _whole_window(extractor: object, samples: np.ndarray, frames: int) -> np.ndarray:
    """What the fast pass computed before: the log-mel of the whole padded window."""
    padded = np.zeros(frames * HOP_SAMPLES, dtype=np.float32)
    padded[:len(samples)] = samples
    return extractor(padded, padding=HOP_SAMPLES)[:, :frames]  # type: ignore[operator, no-any-return]


@pytest.mark.parametrize("window_s", [15.0, 10.0])
def test_features_equal_the_whole_windows(window_s: float) -> None:
    module = pytest.importorskip("faster_whisper.feature_extractor")

    real = module.FeatureExtractor(feature_size=80)
    heard: list[int] = []

    class Model:  # all FastPass._features reads
        @staticmethod
        def feature_extractor(waveform: np.ndarray, padding: int) -> np.ndarray:
            heard.append(len(waveform))
            return real(waveform, padding=padding)  # type: ignore[no-any-return]

    fast = FastPass(Model())
    with wave.open(str(DATA / "goforward.wav")) as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    clips = [speech, speech[:8000], np.zeros(16000, np.float32),
             np.concatenate([speech] * 6)]  # longer than the window - 1 s
    for samples in clips:
        frames = FastPass._frames(len(samples), window_s)
        mine = fast._features(samples, frames)
        computed = heard[-1]
        whole = _whole_window(real, samples, frames)
        # Only the audio plus 1 s is computed (all of it when that fills the window).
        assert computed == min(frames * HOP_SAMPLES, -(-(len(samples) + 16000) // HOP_SAMPLES)
                               * HOP_SAMPLES)
        assert mine.shape == whole.shape == (80, frames) and mine.dtype == np.float32
        assert np.abs(mine - whole).max() < 1e-6
        assert mine.flags.c_contiguous
    assert FastPass._frames(len(clips[-1]), window_s) > window_s * 100  # the no-fill case ran
