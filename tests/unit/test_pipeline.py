"""The pure core, driven by pushing numpy frames with a scripted VAD."""

from __future__ import annotations

import numpy as np
import pytest

from harken.config import RealtimeConfig, VadConfig
from harken.core import SpeechPipeline
from harken.engine.base import EngineOutput, TranscribeRequest, WordTiming
from harken.errors import AudioFormatError
from harken.events import FinalTranscript, SpeechEnded, SpeechStarted, TranscriptionStarted
from harken.testing import ScriptedVad, drive, of_type, silence, tone

RATE = 16000
PLAIN = RealtimeConfig(partials=False, early_final=False)


def run(audio: np.ndarray, intervals, chunk: int = 320, **vad_kwargs):
    pipe = SpeechPipeline(ScriptedVad(intervals), VadConfig(backend="energy", **vad_kwargs),
                          PLAIN)
    return pipe, drive(pipe, audio, chunk_samples=chunk, flush=True)


def test_two_utterances_with_a_pause_give_two_requests_in_order():
    audio = np.concatenate([silence(1), tone(1.5), silence(1), tone(2), silence(1)])
    _, out = run(audio, [(1, 2.5), (3.5, 5.5)])
    kinds = [type(x).__name__ for x in out]
    assert kinds == ["SpeechStarted", "SpeechEnded", "TranscriptionStarted", "TranscribeRequest",
                     "SpeechStarted", "SpeechEnded", "TranscriptionStarted", "TranscribeRequest"]
    reqs = of_type(out, TranscribeRequest)
    assert [r.utterance_id for r in reqs] == [1, 2]
    assert [r.request_id for r in reqs] == [1, 2]


def test_pre_roll_keeps_audio_before_the_detected_start():
    audio = np.concatenate([silence(1), tone(1), silence(1)])
    _, out = run(audio, [(1, 2)], pre_roll_ms=400, start_ms=96)
    started = of_type(out, SpeechStarted)[0]
    # Speech starts at 1.0 s; the utterance must begin about 0.4 s earlier.
    assert 0.55 <= started.start <= 0.65
    req = of_type(out, TranscribeRequest)[0]
    assert req.start_sample == int(round(started.start * RATE))
    # The whole tone is inside the request's audio.
    assert req.start_sample <= RATE and req.end_sample >= 2 * RATE


def test_tail_of_silence_is_short_and_end_time_is_the_last_speech_frame():
    audio = np.concatenate([silence(0.5), tone(1), silence(2)])
    _, out = run(audio, [(0.5, 1.5)], post_speech_silence_ms=700)
    ended = of_type(out, SpeechEnded)[0]
    assert abs(ended.end - 1.5) <= 0.04
    req = of_type(out, TranscribeRequest)[0]
    # 128 ms of silence is kept after the last speech frame.
    assert req.end_sample / RATE == pytest.approx(1.5 + 0.128, abs=0.04)


def test_end_is_decided_after_the_post_speech_silence():
    pipe = SpeechPipeline(ScriptedVad([(0.5, 1.5)]),
                          VadConfig(backend="energy", post_speech_silence_ms=500), PLAIN)
    events = pipe.feed(np.concatenate([silence(0.5), tone(1), silence(0.45)]))
    assert not of_type(events, SpeechEnded)
    events = pipe.feed(silence(0.1))
    assert of_type(events, SpeechEnded)


def test_short_blip_is_discarded_without_a_request():
    audio = np.concatenate([silence(1), tone(0.15), silence(1)])
    _, out = run(audio, [(1, 1.15)], min_utterance_ms=250)
    assert of_type(out, SpeechStarted)
    assert of_type(out, SpeechEnded)[0].discarded
    assert not of_type(out, TranscribeRequest)


def test_pause_shorter_than_the_silence_threshold_does_not_split():
    audio = np.concatenate([silence(0.5), tone(1), silence(0.3), tone(1), silence(1)])
    _, out = run(audio, [(0.5, 1.5), (1.8, 2.8)], post_speech_silence_ms=500)
    assert len(of_type(out, TranscribeRequest)) == 1


def test_long_speech_is_split_at_max_length_and_nothing_is_lost():
    audio = np.concatenate([silence(0.5), tone(9), silence(1)])
    _, out = run(audio, [(0.5, 9.5)], max_utterance_s=4.0)
    reqs = of_type(out, TranscribeRequest)
    assert len(reqs) == 3
    assert [r.split for r in reqs] == [True, True, False]
    assert len({r.utterance_id for r in reqs}) == 1
    for a, b in zip(reqs, reqs[1:], strict=False):
        assert a.end_sample == b.start_sample  # contiguous: no sample dropped or repeated
    assert all(r.duration <= 4.0 + 0.05 for r in reqs)


def test_flush_closes_an_open_utterance():
    audio = np.concatenate([silence(0.5), tone(1)])
    pipe = SpeechPipeline(ScriptedVad([(0.5, 10)]), VadConfig(backend="energy"), PLAIN)
    assert not of_type(pipe.feed(audio), TranscribeRequest)
    out = pipe.flush()
    assert len(of_type(out, TranscribeRequest)) == 1
    assert not pipe.in_utterance


def test_forced_utterance_ignores_the_vad_until_force_end():
    pipe = SpeechPipeline(ScriptedVad([]), VadConfig(backend="energy"), PLAIN)
    pipe.feed(silence(0.5))
    assert of_type(pipe.force_start(), SpeechStarted)
    assert not of_type(pipe.feed(silence(2)), SpeechEnded)
    out = pipe.force_end()
    req = of_type(out, TranscribeRequest)[0]
    assert abs(req.duration - 2.0) < 0.05


def test_chunk_size_does_not_change_the_result():
    audio = np.concatenate([silence(0.7), tone(1.3), silence(1), tone(0.8), silence(1)])
    intervals = [(0.7, 2.0), (3.0, 3.8)]
    ref = [(r.start_sample, r.end_sample) for r in of_type(run(audio, intervals, 512)[1],
                                                       TranscribeRequest)]
    for size in (1, 160, 333, 4000, len(audio)):
        got = [(r.start_sample, r.end_sample) for r in of_type(run(audio, intervals, size)[1],
                                                          TranscribeRequest)]
        assert got == ref


def test_result_times_are_shifted_to_stream_time():
    audio = np.concatenate([silence(2), tone(1), silence(1)])
    pipe, out = run(audio, [(2, 3)])
    req = of_type(out, TranscribeRequest)[0]
    events = pipe.on_result(req, EngineOutput(" hello world ", "en", 0.9,
                                              (WordTiming(0.5, 0.8, " hello", 0.9),)), 0.3, 2)
    final = events[0]
    assert isinstance(final, FinalTranscript)
    assert final.text == "hello world"
    assert final.words[0].start == pytest.approx(req.start_sample / RATE + 0.5, abs=1e-3)
    assert final.attempts == 2 and final.compute_seconds == 0.3
    assert of_type(out, TranscriptionStarted)[0].duration == pytest.approx(req.duration)


def test_wrong_dtype_is_rejected_with_a_clear_error():
    pipe = SpeechPipeline(ScriptedVad([]), VadConfig(backend="energy"), PLAIN)
    with pytest.raises(AudioFormatError, match="float32"):
        pipe.feed(np.zeros(100, dtype=np.int16))
