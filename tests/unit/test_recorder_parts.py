"""The Recorder's pure parts: keyword settings, the callback table, the finals queue, sources.

Fast checks of each piece on its own; tests/integration/test_recorder.py runs them together
with a real engine process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harken.config import RecorderConfig, VadConfig
from harken.errors import ConfigError, EngineError
from harken.events import (
    ErrorEvent,
    FinalTranscript,
    PartialTranscript,
    SpeechStarted,
    WakeWordDetected,
)
from harken.recorder import Recorder
from harken.recorder.callbacks import CallbackTable
from harken.recorder.finals import FinalQueue
from harken.recorder.wiring import is_realtime


def final(text: str) -> FinalTranscript:
    return FinalTranscript(utterance_id=1, text=text, start=0.0, end=1.0)


def test_settings_land_in_the_nested_configs() -> None:
    config = RecorderConfig().with_settings(
        model="base", engine="scripted", vad="energy", pre_roll_ms=200, partials=False,
        wake_words="jarvis", wake_timeout_s=3.0, max_backlog_s=5.0)
    assert config.engine.model == "base" and config.engine.engine == "scripted"
    assert config.vad.backend == "energy" and config.vad.pre_roll_ms == 200
    assert config.realtime.partials is False
    assert config.wake.words == ("jarvis",) and config.wake.timeout_s == 3.0
    assert config.max_backlog_s == 5.0
    base = RecorderConfig()
    assert base.with_settings() is base


def test_settings_keep_the_rest_of_the_config_they_change() -> None:
    base = RecorderConfig(vad=VadConfig(backend="energy", post_speech_silence_ms=300))
    config = base.with_settings(pre_roll_ms=100)
    assert (config.vad.backend, config.vad.post_speech_silence_ms, config.vad.pre_roll_ms) \
        == ("energy", 300, 100)
    assert config.engine is base.engine and base.vad.pre_roll_ms == 400


def test_unknown_settings_are_named_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown Recorder option\(s\): bogus, modle\. "
                                          r"Valid options: .*\bmodel\b"):
        RecorderConfig().with_settings(modle="base", bogus=1)
    # the VAD backend is set as vad=..., so "backend" names nothing
    with pytest.raises(ConfigError, match=r"unknown Recorder option\(s\): backend\."):
        RecorderConfig().with_settings(backend="energy")


def test_settings_are_validated_by_the_config_that_owns_them() -> None:
    with pytest.raises(ConfigError, match="post_speech_silence_ms must be at least 32"):
        RecorderConfig().with_settings(post_speech_silence_ms=10)


def test_callbacks_get_their_documented_arguments() -> None:
    calls: list[tuple[str, tuple[object, ...]]] = []

    def rec(name: str):  # type: ignore[no-untyped-def]
        return lambda *args: calls.append((name, args))

    boom = RuntimeError("boom")
    table = CallbackTable(rec("event"), {
        "on_final": rec("final"), "on_partial": rec("partial"),
        "on_speech_start": rec("start"), "on_error": rec("error"),
        "on_wake_word": rec("wake"), "on_speech_end": None,
    })
    for event in (final("hi"), PartialTranscript(1, "a", "b"), SpeechStarted(1, 0.0),
                  ErrorEvent(boom), WakeWordDetected("jarvis", 0.5)):
        table(event)
    assert [c for c in calls if c[0] != "event"] == [
        ("final", ("hi",)), ("partial", ("a", "b")), ("start", ()), ("error", (boom,)),
        ("wake", ("jarvis",))]
    assert sum(c[0] == "event" for c in calls) == 5


def test_a_callback_that_is_not_callable_is_refused() -> None:
    with pytest.raises(ConfigError, match="on_partial must be callable"):
        CallbackTable(None, {"on_final": print, "on_partial": "print"})
    with pytest.raises(ConfigError, match="on_event must be callable"):
        Recorder(source="push", on_event=42)


def test_finals_queue_delivers_in_order_and_raises_errors_in_place() -> None:
    queue = FinalQueue()
    queue.put(final("one"))
    queue.put(EngineError("bad audio", "ValueError"))
    queue.put(final("two"))
    assert queue.get(0, lambda: None).text == "one"
    with pytest.raises(EngineError, match="bad audio"):
        queue.get(0, lambda: None)
    assert queue.get(0, lambda: None).text == "two"
    with pytest.raises(TimeoutError):
        queue.get(0.05, lambda: None)


def test_finals_queue_wait_ends_when_check_raises_after_wake() -> None:
    queue = FinalQueue()
    closed = threading.Event()

    def check() -> None:
        if closed.is_set():
            raise LookupError("closed")

    def close_soon() -> None:
        time.sleep(0.05)
        closed.set()
        queue.wake()

    thread = threading.Thread(target=close_soon, name="test-closer")
    thread.start()
    started = time.monotonic()
    with pytest.raises(LookupError):
        queue.get(None, check)
    thread.join()
    assert time.monotonic() - started < 1.0


def test_which_sources_are_real_time(tmp_path: Path) -> None:
    assert is_realtime("mic") and is_realtime("push")
    assert not is_realtime(str(tmp_path / "a.wav")) and not is_realtime(tmp_path / "a.wav")


def test_public_import_paths() -> None:
    import harken
    import harken.files

    assert harken.transcribe_file is harken.files.transcribe_file
    assert harken.Recorder is Recorder
    assert not hasattr(harken.recorder, "transcribe_file")  # it lives in harken.files


def test_the_recorder_does_not_import_files() -> None:
    """files imports the recorder; the recorder must not import files back (no circle)."""
    code = "import sys, harken.recorder; print('harken.files' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_dispatcher_wait_delivered_waits_for_slow_callbacks() -> None:
    import threading
    import time

    from harken.events import RecordingStarted
    from harken.recorder.dispatch import Dispatcher

    seen: list[object] = []
    inside: list[bool] = []

    def slow(event: object) -> None:
        time.sleep(0.05)
        seen.append(event)
        inside.append(dispatcher.wait_delivered(1.0))  # from a callback: no deadlock

    dispatcher = Dispatcher([slow])
    assert dispatcher.wait_delivered(0.1)  # nothing queued yet
    dispatcher.start()
    try:
        for _ in range(5):
            dispatcher.emit(RecordingStarted())
        assert len(seen) < 5
        t0 = time.monotonic()
        assert dispatcher.wait_delivered(5.0)
        assert len(seen) == 5 and inside == [True] * 5
        assert time.monotonic() - t0 < 2.0
        blocker = threading.Event()
        dispatcher.add(lambda e: blocker.wait(2.0))
        dispatcher.emit(RecordingStarted())
        assert not dispatcher.wait_delivered(0.2)  # a callback still runs: times out
        blocker.set()
        assert dispatcher.wait_delivered(5.0)
    finally:
        dispatcher.close(2.0)
