"""harken.units: one rounding rule (round up) for ms, samples and frames, and the segmenter
that counts its thresholds with it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harken.config import VadConfig
from harken.core.segmenter import Segment, Segmenter, UtteranceEnded, UtteranceStarted
from harken.errors import ConfigError
from harken.testing import ScriptedVad, tone
from harken.units import (
    FRAME_MS,
    FRAME_SAMPLES,
    MIN_SILENCE_MS,
    SAMPLE_RATE,
    ms_to_frames,
    ms_to_samples,
    s_to_ms,
    s_to_samples,
    samples_to_frames,
)


def test_the_frame_is_32_ms_at_16_khz() -> None:
    assert (SAMPLE_RATE, FRAME_SAMPLES, FRAME_MS, MIN_SILENCE_MS) == (16000, 512, 32, 32)


@pytest.mark.parametrize(("ms", "frames"), [(0, 0), (1, 1), (32, 1), (33, 2), (96, 3),
                                            (400, 13), (500, 16), (28_000, 875)])
def test_ms_to_frames_rounds_up(ms: int, frames: int) -> None:
    assert ms_to_frames(ms) == frames


def test_float_noise_does_not_add_a_unit() -> None:
    assert 2.007 * 1000 > 2007 and 4.03 * SAMPLE_RATE > 64480  # the noise guarded against
    assert s_to_ms(2.007) == 2007
    assert s_to_samples(4.03) == 64480
    assert ms_to_samples(0.5) == 8 and ms_to_samples(0.51) == 9
    assert ms_to_samples(5, rate=44100) == 221  # 220.5 samples at 44.1 kHz


@given(st.integers(min_value=0, max_value=600_000))
def test_whole_ms_cover_the_duration_with_the_fewest_units(ms: int) -> None:
    samples, frames = ms_to_samples(ms), ms_to_frames(ms)
    assert samples * 1000 >= ms * SAMPLE_RATE > (samples - 1) * 1000
    assert frames * FRAME_SAMPLES >= samples > (frames - 1) * FRAME_SAMPLES
    assert samples_to_frames(samples) == frames


@given(st.floats(min_value=0.0, max_value=3600.0, allow_nan=False))
def test_seconds_round_up_the_same_way(seconds: float) -> None:
    samples = s_to_samples(seconds)
    assert samples >= seconds * SAMPLE_RATE - 1e-6
    assert samples - 1 < seconds * SAMPLE_RATE
    assert s_to_ms(seconds) >= seconds * 1000 - 1e-6


def test_the_silence_floor_is_one_frame() -> None:
    assert VadConfig(post_speech_silence_ms=MIN_SILENCE_MS).post_speech_silence_ms == 32
    with pytest.raises(ConfigError, match="at least 32"):
        VadConfig(post_speech_silence_ms=MIN_SILENCE_MS - 1)


def _run(vad_config: VadConfig, speech_s: float, total_s: float) -> list[tuple[int, object]]:
    """Push ``speech_s`` of tone then silence, frame by frame; (frames pushed, event)."""
    seg = Segmenter(vad_config)
    audio = np.concatenate([tone(speech_s), np.zeros(int((total_s - speech_s) * SAMPLE_RATE),
                                                      np.float32)])
    vad = ScriptedVad([(0.0, speech_s)])
    out = []
    for n, i in enumerate(range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES), 1):
        frame = audio[i:i + FRAME_SAMPLES]
        out += [(n, ev) for ev in seg.push(frame, vad.is_speech(frame))]
    return out


@pytest.mark.parametrize("silence_ms", [100, 128, 500])
def test_the_segmenter_waits_the_rounded_up_silence(silence_ms: int) -> None:
    speech_frames = 20  # 640 ms of "speech"
    events = _run(VadConfig(backend="energy", post_speech_silence_ms=silence_ms,
                            min_utterance_ms=0),
                  speech_s=speech_frames * FRAME_MS / 1000, total_s=3.0)
    ended = [n for n, ev in events if isinstance(ev, UtteranceEnded)]
    # 100 ms of silence is 3.125 frames: the utterance ends after the 4th silent frame.
    assert ended == [speech_frames + ms_to_frames(silence_ms)]


@pytest.mark.parametrize(("min_ms", "kept"), [(96, True), (97, False)])
def test_a_minimum_length_is_not_shortened_by_rounding(min_ms: int, kept: bool) -> None:
    """3 frames of speech are 96 ms: enough for 96 ms, not for 97 (it needs 4 frames)."""
    events = _run(VadConfig(backend="energy", start_ms=32, min_utterance_ms=min_ms,
                            pre_roll_ms=0, post_speech_silence_ms=64),
                  speech_s=3 * FRAME_MS / 1000, total_s=1.0)
    assert any(isinstance(ev, UtteranceStarted) for _, ev in events)
    assert any(isinstance(ev, Segment) for _, ev in events) == kept
