"""The segmenter counts silence from where the voice faded, not from the VAD's late flip."""

from __future__ import annotations

import numpy as np
import pytest

from harken.config import VadConfig
from harken.core.segmenter import (
    Segment,
    SegmentConfirmed,
    Segmenter,
    UtteranceEnded,
    frame_level_db,
)
from harken.testing import ScriptedVad, drive, tone
from harken.vad.base import FRAME_SAMPLES

RATE = 16000


def noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    """White noise at ``dbfs`` RMS."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def push_all(audio: np.ndarray, vad: ScriptedVad, early_final: bool = True,
             **vad_kwargs: int) -> list[tuple[int, object]]:
    """Push whole frames; return (position in samples after the frame, event) pairs."""
    seg = Segmenter(VadConfig(backend="energy", **vad_kwargs), early_final=early_final)
    out = []
    for i in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        frame = audio[i:i + FRAME_SAMPLES]
        for ev in seg.push(frame, vad.is_speech(frame)):
            out.append((seg.position, ev))
    return out


def speech_with_a_late_vad(late_s: float) -> tuple[np.ndarray, ScriptedVad]:
    """2 s of room noise at -50 dBFS, 1 s of "speech" (a loud tone over it), 2 s of noise;
    the VAD says speech until ``late_s`` after the tone stopped, as Silero does."""
    audio = noise(5.0, -50.0)
    audio[int(2.0 * RATE):int(3.0 * RATE)] += tone(1.0)
    return audio, ScriptedVad([(2.0, 3.0 + late_s)])


def test_frame_level_db() -> None:
    assert frame_level_db(np.zeros(512, np.float32)) == pytest.approx(-120.0)
    assert frame_level_db(np.full(512, 0.1, np.float32)) == pytest.approx(-20.0, abs=0.01)


def test_silence_counts_from_where_the_voice_faded() -> None:
    audio, vad = speech_with_a_late_vad(0.2)
    events = push_all(audio, vad, post_speech_silence_ms=500)
    ended = [(pos, ev) for pos, ev in events if isinstance(ev, UtteranceEnded)]
    assert len(ended) == 1
    pos, ev = ended[0]
    # The end is where the tone stopped (within a frame), not 200 ms later.
    assert abs(ev.end_sample / RATE - 3.0) <= 0.04, ev.end_sample / RATE
    # The utterance closed 500 ms (+ one frame) after the faded end.
    assert pos / RATE - 3.0 == pytest.approx(0.5, abs=0.07)
    # The speculative final was cut 128 ms after it, and its audio keeps the whole tone and
    # everything the VAD called speech.
    specs = [(p, e) for p, e in events if isinstance(e, Segment) and e.speculative]
    assert len(specs) == 1
    cut_at, seg = specs[0]
    assert cut_at / RATE - 3.0 == pytest.approx(0.25, abs=0.07)  # VAD flip (+0.2) at least
    assert (seg.start_sample + len(seg.audio)) / RATE >= 3.0 + 0.128 - 0.04
    assert any(isinstance(e, SegmentConfirmed) for _, e in events)


def test_without_a_fade_the_vad_end_stands() -> None:
    """Speech that stays loud until the VAD says it ended gets no credit."""
    audio = noise(5.0, -50.0)
    audio[int(2.0 * RATE):int(3.2 * RATE)] += tone(1.2)
    events = push_all(audio, ScriptedVad([(2.0, 3.2)]), post_speech_silence_ms=500)
    ev = next(e for _, e in events if isinstance(e, UtteranceEnded))
    assert abs(ev.end_sample / RATE - 3.2) <= 0.04


def test_no_credit_without_having_heard_the_room() -> None:
    """Digital silence says nothing about the background: the VAD's end stands."""
    audio = np.zeros(5 * RATE, np.float32)
    audio[2 * RATE:3 * RATE] = tone(1.0)
    events = push_all(audio, ScriptedVad([(2.0, 3.2)]), post_speech_silence_ms=500)
    ev = next(e for _, e in events if isinstance(e, UtteranceEnded))
    assert abs(ev.end_sample / RATE - 3.2) <= 0.04


def test_credit_is_capped() -> None:
    """A VAD that lags by a whole second: at most 256 ms of it counts as silence."""
    audio, vad = speech_with_a_late_vad(1.0)
    events = push_all(audio, vad, post_speech_silence_ms=500)
    ev = next(e for _, e in events if isinstance(e, UtteranceEnded))
    assert ev.end_sample / RATE == pytest.approx(4.0 - 0.256, abs=0.04)


def test_a_pause_shorter_than_the_threshold_keeps_one_utterance() -> None:
    """Fade credit must not split speech whose pause is shorter than the silence threshold."""
    audio = noise(6.0, -50.0)
    audio[int(1.0 * RATE):int(2.0 * RATE)] += tone(1.0)
    audio[int(2.3 * RATE):int(3.3 * RATE)] += tone(1.0)  # 300 ms pause
    vad = ScriptedVad([(1.0, 2.15), (2.3, 3.45)])  # VAD 150 ms late each time
    events = push_all(audio, vad, post_speech_silence_ms=500)
    assert len([e for _, e in events if isinstance(e, UtteranceEnded)]) == 1


def test_a_soft_sound_soon_after_the_cut_stays_in_the_final() -> None:
    """The "s" of "times" after a short gap: the VAD calls it silence, the final keeps it."""
    audio = np.zeros(5 * RATE, np.float32)
    audio[2 * RATE:3 * RATE] = tone(1.0)
    hiss = noise(0.06, -40.0, seed=1)
    at = int(3.2 * RATE)
    audio[at:at + len(hiss)] = hiss
    events = push_all(audio, ScriptedVad([(2.0, 3.0)]), post_speech_silence_ms=500)
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["UtteranceStarted", "Segment", "UtteranceEnded", "SegmentRevoked",
                     "Segment"], kinds
    spec, final = (e for _, e in events if isinstance(e, Segment))
    assert spec.speculative and not final.speculative
    assert (spec.start_sample + len(spec.audio)) / RATE == pytest.approx(3.128, abs=0.04)
    end = (final.start_sample + len(final.audio)) / RATE
    assert 3.26 + 0.064 - 0.04 <= end <= 3.26 + 0.064 + 0.04, end  # the hiss + 64 ms


def test_without_a_late_sound_the_speculative_final_is_confirmed() -> None:
    audio = np.zeros(5 * RATE, np.float32)
    audio[2 * RATE:3 * RATE] = tone(1.0)
    events = push_all(audio, ScriptedVad([(2.0, 3.0)]), post_speech_silence_ms=500)
    kinds = [type(e).__name__ for _, e in events]
    assert kinds == ["UtteranceStarted", "Segment", "UtteranceEnded", "SegmentConfirmed"]


def test_fading_is_true_on_background_frames_only() -> None:
    seg = Segmenter(VadConfig(backend="energy"))
    background = noise(1.0, -50.0)
    for i in range(0, len(background) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        seg.push(background[i:i + FRAME_SAMPLES], False)
    assert seg.fading
    seg.push(tone(0.032)[:FRAME_SAMPLES] + background[:FRAME_SAMPLES], True)
    assert not seg.fading
    seg.push(background[:FRAME_SAMPLES], True)  # the VAD still says speech; the voice is gone
    assert seg.fading


def test_no_partial_pass_starts_while_the_voice_fades() -> None:
    from harken.config import RealtimeConfig
    from harken.core import SpeechPipeline
    from harken.engine.base import TranscribeRequest

    audio = noise(4.0, -50.0)
    audio[int(1.0 * RATE):int(2.0 * RATE)] += tone(1.0)
    # The VAD says speech until 2.5 s: 0.5 s after the voice stopped.
    pipe = SpeechPipeline(ScriptedVad([(1.0, 2.5)]), VadConfig(backend="energy"),
                          RealtimeConfig(partial_interval_ms=100, early_final=False))
    issued = []

    def fail(request: TranscribeRequest) -> BaseException | None:
        if request.kind != "partial":
            return None
        issued.append(pipe.position / RATE)
        return RuntimeError("not answered")  # frees the slot

    drive(pipe, audio, answer=fail)
    assert issued and max(issued) <= 2.05, issued


def test_percentile_matches_numpy_and_refuses_no_values():
    from harken.core.segmenter import percentile

    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 94):
        levels = list(rng.uniform(-90.0, 0.0, n))
        for q in (0.0, 20.0, 50.0, 73.5, 100.0):
            assert percentile(levels, q) == pytest.approx(float(np.percentile(levels, q)),
                                                          abs=1e-12)
    with pytest.raises(ValueError):
        percentile([], 20.0)
