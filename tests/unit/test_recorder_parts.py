"""The Recorder's pure parts: keyword shortcuts, the callback table, the finals queue, sources.

Fast checks of each piece on its own; tests/integration/test_recorder.py runs them together
with a real engine process.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from harken._callbacks import CallbackTable
from harken._finals import FinalQueue
from harken._shortcuts import build_config
from harken._wiring import is_realtime
from harken.config import RecorderConfig
from harken.errors import ConfigError, EngineError
from harken.events import (
    ErrorEvent,
    FinalTranscript,
    PartialTranscript,
    SpeechStarted,
    WakeWordDetected,
)
from harken.recorder import Recorder, transcribe_file


def final(text: str) -> FinalTranscript:
    return FinalTranscript(utterance_id=1, text=text, start=0.0, end=1.0)


def test_shortcuts_land_in_the_nested_configs() -> None:
    config = build_config(None, {"model": "base", "engine": "scripted", "vad": "energy",
                                 "wake_words": "jarvis", "max_backlog_s": 5.0})
    assert config.engine.model == "base" and config.engine.engine == "scripted"
    assert config.vad.backend == "energy"
    assert config.wake.words == ("jarvis",)
    assert config.max_backlog_s == 5.0
    base = RecorderConfig()
    assert build_config(base, {}) is base


def test_unknown_shortcuts_are_named_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown Recorder option\(s\): bogus, modle\. "
                                          r"Valid options: .*\bmodel\b"):
        build_config(None, {"modle": "base", "bogus": 1})


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


def test_old_import_paths_still_work() -> None:
    import harken
    import harken.files

    assert harken.transcribe_file is transcribe_file is harken.files.transcribe_file
    assert harken.Recorder is Recorder
