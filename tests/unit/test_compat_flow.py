"""harken.compat's RealtimeSTT methods, fast: real VAD on espeak speech, the scripted engine
(it answers "speech <seconds> s rms <level>", so each final names the audio it got)."""

from __future__ import annotations

import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harken.compat import AudioToTextRecorder
from harken.errors import ConfigError, LifecycleError

S = 16000
PAUSE = np.zeros(S, np.float32)


def scripted(**kw: Any) -> AudioToTextRecorder:
    kw.setdefault("use_microphone", False)
    return AudioToTextRecorder(transcription_engine="scripted", suppress_tokens=None,
                               ensure_sentence_ends_with_period=False,
                               post_speech_silence_duration=0.4, **kw)


def pcm(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def seconds(text: str | None) -> float:
    assert text is not None and text.startswith("Speech "), text
    return float(text.split()[1])


def test_text_returns_each_recording_in_order_and_pending_is_reported(espeak: Any) -> None:
    one, two = espeak("Good morning."), espeak("The weather is fine today, thank you.")
    with scripted() as rec:
        rec.feed_audio(pcm(np.concatenate([PAUSE, one, PAUSE, two, PAUSE])))
        assert rec.drain_audio_input(30)
        assert rec.has_pending_recordings()
        first, second = rec.text(), rec.text()
        assert not rec.has_pending_recordings()
    assert seconds(first) < seconds(second)
    # The recording's audio: the engine's copy has ~0.1 s more of the trailing silence.
    assert rec.audio is not None and abs(len(rec.audio) / S - seconds(second)) < 0.2
    assert float(np.abs(rec.audio).max()) > 0.1
    assert rec.state == "inactive" and rec.is_recording is False


def test_clear_audio_queue_drops_waiting_recordings(espeak: Any) -> None:
    with scripted() as rec:
        rec.feed_audio(pcm(np.concatenate([PAUSE, espeak("Good morning."), PAUSE])))
        assert rec.drain_audio_input(30) and rec.has_pending_recordings()
        rec.clear_audio_queue()
        assert not rec.has_pending_recordings()
        rec.feed_audio(pcm(np.concatenate([espeak("Hello there, friend."), PAUSE])))
        text = rec.text()
    assert seconds(text) > 0.5


def test_abort_makes_a_waiting_text_return_empty() -> None:
    with scripted() as rec:
        rec.feed_audio(pcm(PAUSE))
        timer = threading.Timer(0.5, rec.abort)
        timer.start()
        t0 = time.monotonic()
        assert rec.text() == ""
        assert time.monotonic() - t0 < 5
        timer.join()


def test_manual_start_stop_and_the_recorded_chunks() -> None:
    chunks: list[bytes] = []
    tone = (0.2 * np.sin(np.arange(S) * 2 * np.pi * 440 / S)).astype(np.float32)
    with scripted(on_recorded_chunk=chunks.append) as rec:
        rec.start()
        rec.feed_audio(tone, original_sample_rate=S)
        assert rec.drain_audio_input(30)
        rec.stop()
        text = rec.text()
        with pytest.raises(ConfigError, match="backdate_stop_seconds"):
            rec.stop(backdate_stop_seconds=0.5)
    assert 0.9 <= seconds(text) <= 1.2
    assert b"".join(chunks) == pcm(tone)


def test_perform_final_transcription_of_other_audio() -> None:
    audio = np.full(S // 2, 0.1, np.float32)
    with scripted() as rec:
        text = rec.perform_final_transcription(audio)
        assert rec.perform_final_transcription(np.zeros(0, np.float32)) == ""
    assert 0.45 <= seconds(text) <= 0.6
    assert rec.last_transcription_bytes is not None and len(rec.last_transcription_bytes) == \
        len(audio)


def test_feed_audio_file_unpaced_and_normalised(tmp_path: Path, espeak: Any) -> None:
    path = tmp_path / "speech.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(S)
        w.writeframes(pcm(np.concatenate([PAUSE, 0.3 * espeak("Good morning."), PAUSE])))
    with scripted() as rec:
        t0 = time.monotonic()
        rec.feed_audio_file(path, normalize=False, realtime=False)
        assert time.monotonic() - t0 < 2.5  # 2.9 s of audio, not paced
        quiet = rec.text()
        rec.feed_audio_file([path], realtime=False)
        loud = rec.text()
    assert quiet is not None and loud is not None
    # Normalised to a 0.95 peak: louder than 0.3 x espeak's level by the same factor.
    assert float(loud.split()[-1]) > 2 * float(quiet.split()[-1])


def test_set_microphone_without_a_microphone_and_after_shutdown() -> None:
    rec = scripted()
    rec.set_microphone(False)
    with pytest.raises(LifecycleError, match="use_microphone=True"):
        rec.set_microphone(True)
    rec.shutdown()
    rec.shutdown()  # idempotent
    with pytest.raises(LifecycleError):
        rec.text()


def test_multilingual_default_model_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the engine program may not download it
    rec = AudioToTextRecorder(use_microphone=False, download_root="/nonexistent-cache",
                              compute_type="int8")
    with pytest.raises(ConfigError, match="tiny.en") as err:
        rec.text()
    assert "model='tiny'" in str(err.value) and "multilingual" in str(err.value)
    rec.shutdown()


def test_perform_final_transcription_with_and_without_the_prompt() -> None:
    audio = np.full(S // 2, 0.1, np.float32)
    with scripted(initial_prompt="Names: Ada, Grace.") as rec:
        with_prompt = rec.perform_final_transcription(audio)
        without = rec.perform_final_transcription(audio, use_prompt=False)
        assert sorted(rec._oneshots) == [False, True]  # one engine program per choice
        assert rec._oneshots[True].config.engine.initial_prompt == "Names: Ada, Grace."
        assert rec._oneshots[False].config.engine.initial_prompt is None
    assert seconds(with_prompt) == seconds(without)


def test_turn_detection_callbacks_bracket_each_pause(espeak: Any) -> None:
    # Two phrases ~0.2 s apart are one recording (the end needs 0.4 s): the pause between
    # them starts and stops turn detection; the last one stops it after the recording stop.
    calls: list[str] = []
    short = np.zeros(S // 10, np.float32)
    first = espeak("Good morning.")[:-S // 4]  # espeak ends with 0.35 s of silence
    with scripted(on_turn_detection_start=lambda: calls.append("start"),
                  on_turn_detection_stop=lambda: calls.append("stop"),
                  on_recording_stop=lambda: calls.append("recording_stop")) as rec:
        rec.feed_audio(pcm(np.concatenate([PAUSE, first, short,
                                           espeak("The weather is fine."), PAUSE])))
        text = rec.text()
        assert rec.drain_audio_input(30)
    assert seconds(text) > 2.0  # both phrases
    assert calls.count("recording_stop") == 1
    pauses = [c for c in calls if c != "recording_stop"]
    assert len(pauses) >= 4 and pauses == ["start", "stop"] * (len(pauses) // 2), calls
    assert calls[-2:] == ["recording_stop", "stop"], calls


def test_text_with_a_callback_returns_at_once_and_calls_it_on_its_own_thread(
        espeak: Any) -> None:
    got: list[tuple[str | None, str]] = []
    release = threading.Event()

    def finished(text: str | None) -> None:
        release.wait(10)  # a slow callback does not hold up text()
        got.append((text, threading.current_thread().name))

    with scripted() as rec:
        rec.feed_audio(pcm(np.concatenate([PAUSE, espeak("Good morning."), PAUSE])))
        assert rec.text(finished) is None
        assert got == []  # text() returned while the callback waits
        release.set()
    # shutdown() joined the callback's thread.
    assert len(got) == 1 and seconds(got[0][0]) > 0.5
    assert got[0][1] == "harken-compat-text"


def test_an_exception_in_the_text_callback_is_raised_by_the_next_text(espeak: Any) -> None:
    def broken(text: str | None) -> None:
        raise RuntimeError("callback broke")

    phrase = espeak("Good morning.")
    with scripted() as rec:
        rec.feed_audio(pcm(np.concatenate([PAUSE, phrase, PAUSE, phrase, PAUSE])))
        assert rec.text(broken) is None
        deadline = time.monotonic() + 5
        while rec._handoff._error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(RuntimeError, match="callback broke"):
            rec.text()
        assert seconds(rec.text()) > 0.5  # raised once; the next recording is still there


def test_wakeup_listens_for_the_next_speech_without_forcing_a_recording(espeak: Any) -> None:
    # The phrase wake word never matches the scripted engine's text: speech is ignored
    # until wakeup(), and wakeup() records nothing on silence.
    phrase = espeak("Good morning.")
    calls: list[str] = []
    with scripted(wake_words="hey harken", wakeword_backend="phrase", wake_word_timeout=3.0,
                  on_wakeword_detected=lambda: calls.append("detected"),
                  on_wakeword_detection_end=lambda: calls.append("detection_end"),
                  on_vad_detect_start=lambda: calls.append("vad_detect_start")) as rec:
        rec.feed_audio(pcm(np.concatenate([PAUSE, phrase, PAUSE])))
        assert rec.drain_audio_input(30)
        assert not rec.has_pending_recordings() and rec.state == "wakeword"
        calls.clear()
        rec.wakeup()
        assert rec.state == "listening"
        # As RealtimeSTT's state change: the wake word wait ends, listening starts; no wake
        # word was heard.
        assert calls == ["detection_end", "vad_detect_start"]
        rec.feed_audio(pcm(np.concatenate([PAUSE, PAUSE])))
        assert rec.drain_audio_input(30)
        assert not rec.has_pending_recordings()  # silence: nothing was recorded
        rec.feed_audio(pcm(np.concatenate([phrase, PAUSE])))
        text = rec.text()
        assert rec.drain_audio_input(30)
    # The phrase and up to RealtimeSTT's default 1 s of pre-recording buffer.
    assert len(phrase) / S - 0.4 < seconds(text) < len(phrase) / S + 1.2
