"""The Recorder with its real engine process, driven by a scripted engine and a scripted VAD.

These run the real threads and the real child program; only the model is replaced, so each
test takes well under a second or two.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import numpy as np
import pytest

from harken import (
    AsyncRecorder,
    AudioFormatError,
    ConfigError,
    EngineError,
    ErrorEvent,
    FinalTranscript,
    LifecycleError,
    Recorder,
    RecorderState,
    SpeechEnded,
    SpeechStarted,
    TranscriptionStarted,
    WorkerCrashed,
)
from harken.testing import ScriptedVad, silence, tone

# Two bursts: 0.5-1.5 s and 2.5-4.0 s.
AUDIO = np.concatenate([silence(0.5), tone(1.0), silence(1.0), tone(1.5), silence(1.0)])
SPEECH = [(0.5, 1.5), (2.5, 4.0)]


def make(events=None, options=None, **kwargs):
    kwargs.setdefault("vad_detector", ScriptedVad(SPEECH))
    return Recorder(source="push", engine="scripted", options=options or {},
                    on_event=None if events is None else events.append, **kwargs)


def feed(rec, audio=AUDIO, chunk=320):
    for i in range(0, len(audio), chunk):
        rec.feed_audio(audio[i:i + chunk])


def test_push_audio_gives_one_final_per_utterance_in_order():
    events = []
    with make(events) as rec:
        feed(rec)
        first, second = rec.next_final(10), rec.next_final(10)
    assert (first.utterance_id, second.utterance_id) == (1, 2)
    # The scripted engine describes the audio it got: about 1.0 s and 1.5 s of tone + margins.
    assert first.text.startswith("speech 1.")
    assert second.text.startswith("speech 2.")
    assert first.start < 0.5 < 1.5 <= first.end
    kinds = [type(e) for e in events if isinstance(e, (SpeechStarted, SpeechEnded,
                                                       TranscriptionStarted, FinalTranscript))]
    assert kinds.count(SpeechStarted) == 2 and kinds.count(FinalTranscript) == 2
    assert kinds.index(SpeechEnded) < kinds.index(FinalTranscript)
    assert rec.state is RecorderState.CLOSED


def test_callbacks_get_text_and_speech_events():
    got: dict[str, list] = {"final": [], "start": [], "end": [], "rec": []}
    with make(on_final=got["final"].append, on_speech_start=lambda: got["start"].append(1),
              on_speech_end=lambda: got["end"].append(1),
              on_recording_start=lambda: got["rec"].append("start"),
              on_recording_stop=lambda: got["rec"].append("stop")) as rec:
        feed(rec)
        rec.flush(10)
    assert len(got["final"]) == 2 and all(t.startswith("speech") for t in got["final"])
    assert got["start"] == [1, 1] and got["end"] == [1, 1]
    assert got["rec"] == ["start", "stop"]


def test_iterator_and_flush_at_end_of_stream():
    rec = make(vad_detector=ScriptedVad([(0.5, 100)]))
    rec.start()
    feed(rec, np.concatenate([silence(0.5), tone(1.2)]))  # speech still going on
    rec.flush(10)  # end of the call: the open utterance is transcribed
    rec.close()
    finals = list(rec.transcripts())
    assert len(finals) == 1 and finals[0].text.startswith("speech 1.")


def test_lifecycle_errors_say_what_to_do():
    rec = make()
    with pytest.raises(LifecycleError, match="before start"):
        rec.feed_audio(np.zeros(160, dtype=np.float32))
    with pytest.raises(LifecycleError, match="start"):
        rec.text(0.1)
    rec.start()
    with pytest.raises(LifecycleError, match="already"):
        rec.start()
    rec.close()
    rec.close()  # idempotent
    with pytest.raises(LifecycleError, match="after close"):
        rec.feed_audio(np.zeros(160, dtype=np.float32))
    with pytest.raises(LifecycleError, match="closed"):
        rec.text(0.1)


def test_close_with_an_idle_worker_is_fast():
    rec = make()
    rec.start()
    t0 = time.monotonic()
    rec.close()
    assert time.monotonic() - t0 < 2.0


def test_bad_input_gets_a_clear_error_and_nothing_is_lost():
    with make() as rec:
        with pytest.raises(AudioFormatError, match="dtype"):
            rec.feed_audio(np.zeros(160, dtype=np.int32))
        with pytest.raises(AudioFormatError, match="NaN"):
            rec.feed_audio(np.full(160, np.nan, dtype=np.float32))
        with pytest.raises(AudioFormatError, match="sample_rate"):
            rec.feed_audio(np.zeros(160, dtype=np.float32), sample_rate=0)
        with pytest.raises(AudioFormatError):
            rec.feed_audio(b"\x00\x01\x02", encoding="pcm16")
        rec.feed_audio(np.zeros(0, dtype=np.float32))  # empty: a no-op
        # The same audio, as int16 at 8 kHz in one huge chunk, still gives both utterances.
        pcm8k = (np.interp(np.arange(0, len(AUDIO), 2), np.arange(len(AUDIO)), AUDIO)
                 * 32767).astype(np.int16)
        rec.feed_audio(pcm8k, sample_rate=8000)
        rec.flush(10)
        texts = [rec.text(1), rec.text(1)]
    assert all(t.startswith("speech") for t in texts)


def test_unknown_option_and_bad_callback_are_rejected_at_construction():
    with pytest.raises(ConfigError, match="post_speech_silence_ms"):
        Recorder(source="push", post_speech_silence=0.5)
    with pytest.raises(ConfigError, match="callable"):
        Recorder(source="push", on_final="print")
    with pytest.raises(ConfigError, match="no file"):
        Recorder(source="/no/such/file.wav")


def test_a_callback_that_raises_is_reported_and_the_recorder_goes_on():
    errors = []

    def bad(text):
        raise ValueError("boom in user code")

    with make(on_final=bad, on_error=errors.append) as rec:
        feed(rec)
        rec.flush(10)
        assert rec.text(1) and rec.text(1)
    assert len(errors) == 2 and all(isinstance(e, ValueError) for e in errors)


def test_engine_init_failure_raises_from_start_and_leaves_nothing():
    rec = make(options={"fail_load": "no such model"})
    with pytest.raises(EngineError, match="no such model"):
        rec.start()
    assert rec.state is RecorderState.CLOSED
    rec.close()


def test_engine_killed_mid_utterance_is_restarted_and_the_utterance_transcribed(tmp_path):
    errors = []
    started = threading.Event()

    def on_event(event):
        if isinstance(event, TranscriptionStarted):
            started.set()

    with make(options={"delay_s": 1.0}, on_error=errors.append,
              vad_detector=ScriptedVad([(0.5, 1.5)])) as rec:
        rec.subscribe(on_event)
        feed(rec, AUDIO[:int(2.5 * 16000)])
        assert started.wait(10)
        time.sleep(0.2)  # the request is now inside the engine process
        first_pid = rec.engine_pid
        os.kill(first_pid, signal.SIGKILL)
        final = rec.next_final(20)
        assert rec.engine_pid != first_pid
    assert final.text.startswith("speech 1.") and final.attempts == 2
    assert any(isinstance(e, WorkerCrashed) for e in errors)


def test_engine_error_on_one_utterance_is_reported_and_later_ones_work():
    errors = []
    # Utterances over 1.2 s fail inside the engine: the second one (1.5 s of tone).
    with make(options={"fail_min_s": 1.9}, on_error=errors.append) as rec:
        feed(rec)
        assert rec.text(10).startswith("speech 1.")
        with pytest.raises(EngineError):
            rec.text(10)
        feed(rec, np.concatenate([silence(0.5), tone(1.0), silence(1.0)]))
        rec.flush(10)
    assert any(isinstance(e, EngineError) for e in errors)


def test_pause_drops_audio_and_resume_takes_it_again():
    with make(vad_detector=ScriptedVad([(0.5, 1.5), (2.5, 4.0), (4.5 + 0.5, 4.5 + 1.5)])) as rec:
        feed(rec)
        rec.flush(10)
        rec.pause()
        assert rec.state is RecorderState.PAUSED
        feed(rec, AUDIO[:int(2.5 * 16000)])  # dropped
        rec.resume()
        rec.flush(10)
        assert rec.finals == 2


def test_async_recorder_streams_finals():
    async def main():
        async with AsyncRecorder(source="push", engine="scripted",
                                 vad_detector=ScriptedVad(SPEECH)) as rec:
            finals = []

            async def collect():
                async for final in rec.transcripts():
                    finals.append(final)

            task = asyncio.create_task(collect())
            await asyncio.sleep(0)
            for i in range(0, len(AUDIO), 1600):
                await rec.feed_audio(AUDIO[i:i + 1600])
            await rec.flush(10)
        await asyncio.wait_for(task, 5)
        return finals

    finals = asyncio.run(main())
    assert [f.utterance_id for f in finals] == [1, 2]


def test_errors_in_events_are_error_events():
    events = []
    rec = make(events, options={"fail_min_s": 0.1})
    with rec:
        feed(rec, AUDIO[:int(2.5 * 16000)])
        rec.flush(10)
    errs = [e for e in events if isinstance(e, ErrorEvent)]
    assert errs and errs[0].where == "engine" and not errs[0].fatal


def test_close_during_start_stops_everything_and_start_says_why():
    rec = make(options={"load_delay_s": 5.0})
    errors = []

    def starter():
        try:
            rec.start()
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=starter)
    thread.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    rec.close()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - t0 < 4.0
    assert len(errors) == 1 and isinstance(errors[0], LifecycleError)
    assert rec.state is RecorderState.CLOSED


def test_partials_arrive_while_speaking_and_stable_text_only_grows():
    from harken import PartialTranscript

    events = []
    long_speech = np.concatenate([silence(0.5), tone(3.0), silence(1.0)])
    with make(events, vad_detector=ScriptedVad([(0.5, 3.5)]), options={"delay_s": 0.05},
              partial_interval_ms=200) as rec:
        for i in range(0, len(long_speech), 320):
            rec.feed_audio(long_speech[i:i + 320])
            time.sleep(0.004)  # a little slower than the engine, as live audio is
        rec.flush(10)
        final = rec.text(5)
    partials = [e for e in events if isinstance(e, PartialTranscript)]
    assert len(partials) >= 3
    assert all(p.utterance_id == 1 for p in partials)
    stables = [p.stable for p in partials]
    assert all(b.startswith(a) for a, b in zip(stables, stables[1:], strict=False))
    assert stables[-1].startswith("speech")  # the scripted engine's first word is stable
    # Partials come before the final of the same utterance, never after it.
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("FinalTranscript") > max(
        i for i, k in enumerate(kinds) if k == "PartialTranscript")
    assert final.startswith("speech 3.")


def test_partials_off_sends_no_partial_requests():
    from harken import PartialTranscript

    events = []
    with make(events, partials=False) as rec:
        feed(rec)
        rec.flush(10)
    assert not [e for e in events if isinstance(e, PartialTranscript)]
