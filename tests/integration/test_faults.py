"""Faults through the whole Recorder: killed and hung engines, failed loads, a vanishing
microphone and a callback that never returns.

Real threads and the real engine process; only the model (ScriptedEngine, with its fault
options) and the VAD (ScriptedVad) are scripted, so each test takes a few seconds at most.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import pytest

from harken import (
    AudioSourceError,
    EngineError,
    ErrorEvent,
    FinalTranscript,
    Recorder,
    RecorderState,
    TranscriptionStarted,
    WorkerCrashed,
)
from harken.testing import ScriptedVad, silence, tone

RATE = 16000
CHUNK = 1600  # 100 ms


def utterances(n: int, speech_s: float = 1.0, gap_s: float = 0.7,
               lead_s: float = 0.5) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``n`` tone bursts separated by silence, and the scripted speech intervals (seconds)."""
    parts, intervals, t = [], [], 0.0
    for _ in range(n):
        parts += [silence(lead_s), tone(speech_s), silence(gap_s)]
        intervals.append((t + lead_s, t + lead_s + speech_s))
        t += lead_s + speech_s + gap_s
    return np.concatenate(parts), intervals


def feed(rec: Recorder, audio: np.ndarray, speed: float = 0.0) -> None:
    """Push ``audio`` in 100 ms chunks, ``speed`` times faster than real time (0: at once)."""
    for i in range(0, len(audio), CHUNK):
        rec.feed_audio(audio[i:i + CHUNK])
        if speed:
            time.sleep(CHUNK / RATE / speed)


def test_random_sigkills_lose_no_utterance() -> None:
    rng = random.Random(20240611)
    n = 10
    audio, speech = utterances(n)
    victims = sorted(rng.sample(range(1, n + 1), 4))
    offsets = [rng.uniform(0.02, 0.3) for _ in victims]
    transcribing = {i: threading.Event() for i in range(1, n + 1)}
    finished = {i: threading.Event() for i in range(1, n + 1)}
    finals: list[FinalTranscript] = []
    errors: list[BaseException] = []
    killed: list[int] = []

    def on_event(event: object) -> None:
        if isinstance(event, TranscriptionStarted):
            transcribing[event.utterance_id].set()
        elif isinstance(event, FinalTranscript):
            finals.append(event)
            finished[event.utterance_id].set()

    def killer(rec: Recorder) -> None:
        # Kill while the victim's request is (most likely) inside the engine (it takes
        # 0.4 s per request), and only once the last victim was answered: a kill during a
        # restart's model load is a failed restart, which is a different fault.
        for victim, offset in zip(victims, offsets, strict=True):
            if not transcribing[victim].wait(30):
                return
            time.sleep(offset)
            pid = rec.engine_pid
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            if not finished[victim].wait(30):
                return

    # max_attempts=5: four kills can then never exhaust one request's attempts, so any
    # loss is a real loss, not the retry policy giving up.
    with Recorder(source="push", engine="scripted", options={"delay_s": 0.4},
                  vad_detector=ScriptedVad(speech), on_event=on_event,
                  on_error=errors.append, max_attempts=5) as rec:
        thread = threading.Thread(target=killer, args=(rec,), name="test-killer")
        thread.start()
        feed(rec, audio, speed=4.0)
        rec.flush(60)
        thread.join(30)
        texts = [rec.text(0) for _ in range(n)]
        with pytest.raises(TimeoutError):
            rec.text(0)
    assert len(killed) == len(victims) == len(set(killed))
    counts = Counter(f.utterance_id for f in finals)
    assert counts == Counter(range(1, n + 1)), f"finals per utterance: {dict(counts)}"
    lost = n - len(counts)
    assert lost == 0
    assert all(t.startswith("speech 1.") for t in texts), texts
    assert sum(f.attempts - 1 for f in finals) >= len(killed)
    crashes = [e for e in errors if isinstance(e, WorkerCrashed)]
    assert len(crashes) == len(killed) and len(errors) == len(killed), errors


def test_hung_engine_is_restarted_by_the_watchdog_and_the_utterance_transcribed(
        tmp_path: Path) -> None:
    marker = tmp_path / "hang"
    audio, speech = utterances(1, speech_s=0.5)
    errors: list[BaseException] = []
    # Finals only, so the hang lands on the final (not on a partial).
    with Recorder(source="push", engine="scripted", options={"hang_marker": str(marker)},
                  vad_detector=ScriptedVad(speech), on_error=errors.append,
                  request_timeout_s=1.0, partials=False) as rec:
        feed(rec, audio)
        t0 = time.monotonic()
        final = rec.next_final(15)
        waited = time.monotonic() - t0
    assert marker.exists(), "the engine never hung: the test did not test anything"
    assert final.text.startswith("speech") and final.attempts == 2
    # The watchdog's budget is request_timeout_s + 2 x the audio (about 1.4 s here).
    assert waited < 8.0
    crashes = [e for e in errors if isinstance(e, WorkerCrashed)]
    assert len(crashes) == 1 and "answered nothing" in str(crashes[0]), errors


def test_model_load_failure_raises_from_start_and_nothing_is_left() -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    rec = Recorder(source="push", engine="scripted",
                   options={"load_delay_s": 0.3, "fail_load": "model file is corrupt"},
                   vad_detector=ScriptedVad([]))
    t0 = time.monotonic()
    with pytest.raises(EngineError, match="model file is corrupt") as info:
        rec.start()
    assert time.monotonic() - t0 < 5.0
    assert info.value.error_type == "RuntimeError"
    # Checked at once, not after a grace period: start() cleans up before it raises.
    assert not [t.name for t in threading.enumerate() if t.name.startswith("harken")]
    assert {p.pid for p in psutil.Process().children(recursive=True)} - before == set()
    assert rec.state is RecorderState.CLOSED and rec.engine_pid is None
    rec.close()


class VanishingMic:
    """An AudioSource whose device disappears: it delivers ``audio``, then reports an error
    from its own thread and stops, as a microphone does when it is unplugged."""

    realtime = True

    def __init__(self, audio: np.ndarray) -> None:
        self._audio = audio
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.closed = 0

    def start(self, sink: object) -> None:
        self._thread = threading.Thread(target=self._run, args=(sink,),
                                        name="harken-test-mic", daemon=True)
        self._thread.start()

    def _run(self, sink: object) -> None:
        for i in range(0, len(self._audio), CHUNK):
            if self._stop.is_set():
                return
            sink.write(self._audio[i:i + CHUNK])  # type: ignore[attr-defined]
        sink.error(AudioSourceError("input device 'USB mic' was unplugged"))  # type: ignore

    def close(self) -> None:
        self.closed += 1
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)


def test_a_microphone_that_disappears_is_reported_and_close_is_clean() -> None:
    audio, speech = utterances(2)
    events: list[object] = []
    got_error = threading.Event()

    def on_event(event: object) -> None:
        events.append(event)
        if isinstance(event, ErrorEvent):
            got_error.set()

    mic = VanishingMic(audio)
    rec = Recorder(source=mic, engine="scripted", vad_detector=ScriptedVad(speech),
                   on_event=on_event)
    rec.start()
    try:
        assert got_error.wait(10)
        assert rec.state is RecorderState.RUNNING  # not fatal: the user decides
        assert [rec.text(10), rec.text(10)][1].startswith("speech 1.")
    finally:
        t0 = time.monotonic()
        rec.close()
        closing = time.monotonic() - t0
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert len(errors) == 1
    assert errors[0].where == "source" and not errors[0].fatal
    assert isinstance(errors[0].error, AudioSourceError) and "unplugged" in str(errors[0].error)
    assert rec.state is RecorderState.CLOSED and mic.closed >= 1
    assert closing < 3.0


def test_a_blocked_callback_delays_no_final_and_no_audio() -> None:
    n = 5
    audio, speech = utterances(n)
    release = threading.Event()
    calls: list[str] = []

    def on_final(text: str) -> None:
        calls.append(text)
        release.wait(30)  # a user callback stuck on I/O

    rec = Recorder(source="push", engine="scripted", vad_detector=ScriptedVad(speech),
                   on_final=on_final)
    rec.start()
    try:
        feed(rec, audio)
        texts = [rec.text(10) for _ in range(n)]
        assert rec.wait_idle(10)
        assert rec.position == pytest.approx(len(audio) / RATE, abs=0.05)
        assert len(calls) == 1  # the callback is still stuck on the first final
        assert rec.finals == n
    finally:
        release.set()
        rec.close()
    assert all(t.startswith("speech 1.") for t in texts)
    assert len(calls) == n  # the queued callbacks all ran once released


def test_a_hang_charges_only_the_request_being_transcribed(tmp_path: Path) -> None:
    # Four utterances reach the engine process together; it hangs on the first. The
    # watchdog kills it: only that request was being worked on, so with max_attempts=1
    # it alone fails (reported, not silent) and the three queued behind it are
    # transcribed by the restarted process.
    marker = tmp_path / "hang"
    n = 4
    audio, speech = utterances(n, speech_s=0.5, gap_s=0.6, lead_s=0.3)
    errors: list[BaseException] = []
    # Finals only: with live partials a partial may be the first request the engine takes,
    # and the hang would land on it instead.
    with Recorder(source="push", engine="scripted", options={"hang_marker": str(marker)},
                  vad_detector=ScriptedVad(speech), on_error=errors.append,
                  request_timeout_s=1.0, max_attempts=1, partials=False) as rec:
        feed(rec, audio)
        rec.flush(20)
        outcomes: list[str | BaseException] = []
        for _ in range(n):
            try:
                outcomes.append(rec.text(0))
            except WorkerCrashed as exc:
                outcomes.append(exc)
    assert marker.exists()
    assert isinstance(outcomes[0], WorkerCrashed), outcomes
    assert all(isinstance(t, str) and t.startswith("speech") for t in outcomes[1:]), outcomes
