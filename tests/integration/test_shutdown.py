"""Shutdown is bounded from every state, and Ctrl+C on ``harken listen`` leaves nothing behind.

Every close() here is timed: a user's program must be able to exit promptly whatever the
engine is doing. The autouse ``no_leaks`` fixture then checks that no harken thread and no
child process outlived the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest

from harken import LifecycleError, Recorder, RecorderState, TranscriptionStarted
from harken.testing import ScriptedVad, silence, tone

RATE = 16000
CHUNK = 1600
SPEECH = [(0.5, 1.5)]
AUDIO = np.concatenate([silence(0.5), tone(1.0), silence(1.0)])


def make(options: dict[str, object] | None = None, **kwargs: object) -> Recorder:
    kwargs.setdefault("vad_detector", ScriptedVad(SPEECH))
    return Recorder(source="push", engine="scripted", options=options or {},
                    **kwargs)  # type: ignore[arg-type]


def feed(rec: Recorder, audio: np.ndarray) -> None:
    for i in range(0, len(audio), CHUNK):
        rec.feed_audio(audio[i:i + CHUNK])


def timed(fn: Callable[[], object]) -> float:
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def gone(pid: int) -> bool:
    """True when process ``pid`` no longer runs (reaped, or a zombie)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_transcribing(rec: Recorder) -> threading.Event:
    started = threading.Event()
    rec.subscribe(lambda e: started.set() if isinstance(e, TranscriptionStarted) else None)
    return started


def test_close_before_start_is_instant_and_final() -> None:
    rec = make()
    assert timed(rec.close) < 0.1
    assert rec.state is RecorderState.CLOSED
    with pytest.raises(LifecycleError):
        rec.start()


def test_close_mid_utterance_transcribes_the_open_speech_within_bounds() -> None:
    finals: list[str] = []
    rec = make(vad_detector=ScriptedVad([(0.5, 100.0)]), on_final=finals.append)
    rec.start()
    feed(rec, np.concatenate([silence(0.5), tone(1.0)]))  # speech still open
    assert rec.wait_idle(5)
    elapsed = timed(rec.close)
    assert elapsed < 3.0
    assert len(finals) == 1 and finals[0].startswith("speech 1.")


def test_close_mid_utterance_without_flush_drops_it_fast() -> None:
    finals: list[str] = []
    rec = make(vad_detector=ScriptedVad([(0.5, 100.0)]), on_final=finals.append,
               options={"delay_s": 5.0})
    rec.start()
    feed(rec, np.concatenate([silence(0.5), tone(1.0)]))
    elapsed = timed(lambda: rec.close(flush=False))
    assert elapsed < 1.5 and finals == []


def test_close_mid_final_with_a_slow_engine_is_bounded_by_its_timeout() -> None:
    rec = make(options={"delay_s": 5.0})
    rec.start()
    started = wait_transcribing(rec)
    feed(rec, AUDIO)
    assert started.wait(5)
    time.sleep(0.1)  # the request is inside the engine, which sleeps 5 s on it
    pid = rec.engine_pid
    elapsed = timed(lambda: rec.close(timeout=0.5))
    # 0.5 s waiting for the final, then close_timeout_s (2 s) at most for the process.
    assert elapsed < 3.0, f"close took {elapsed:.2f} s"
    assert pid is not None and gone(pid)
    with pytest.raises(LifecycleError):
        rec.text(0)  # the unfinished utterance is abandoned, not reported as text


def test_close_with_a_hung_engine_is_bounded(tmp_path: Path) -> None:
    marker = tmp_path / "hang"
    rec = make(options={"hang_marker": str(marker)})
    rec.start()
    started = wait_transcribing(rec)
    feed(rec, AUDIO)
    assert started.wait(5)
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists()
    elapsed = timed(lambda: rec.close(timeout=0.5))
    assert elapsed < 3.0, f"close took {elapsed:.2f} s"


def test_close_while_paused_is_fast() -> None:
    rec = make()
    rec.start()
    rec.pause()
    assert timed(rec.close) < 2.0
    assert rec.state is RecorderState.CLOSED


def test_close_from_another_thread_while_start_waits_for_a_slow_model() -> None:
    rec = make(options={"load_delay_s": 30.0})
    outcome: list[object] = []

    def run_start() -> None:
        t0 = time.monotonic()
        try:
            rec.start()
            outcome.append("returned")
        except Exception as exc:  # the expected way: start() fails because of close()
            outcome.append(exc)
        outcome.append(time.monotonic() - t0)

    starter = threading.Thread(target=run_start, name="test-starter")
    starter.start()
    deadline = time.monotonic() + 10
    while rec.engine_pid is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rec.engine_pid is not None, "the engine process never started"
    pid = rec.engine_pid
    time.sleep(0.3)  # the child is now inside its 30 s model load
    elapsed = timed(rec.close)
    starter.join(5)
    assert not starter.is_alive(), "start() was still blocked 5 s after close()"
    assert elapsed < 3.0, f"close took {elapsed:.2f} s"
    assert len(outcome) == 2 and outcome[1] < 5.0  # type: ignore[operator]
    assert isinstance(outcome[0], LifecycleError), f"start() gave {outcome[0]!r}"
    assert rec.state is RecorderState.CLOSED
    assert pid is not None and gone(pid)


class BlockingVad(ScriptedVad):
    """A VAD whose load() blocks until released (a slow model file on a network drive)."""

    def __init__(self) -> None:
        super().__init__(SPEECH)
        self.loading = threading.Event()
        self.release = threading.Event()

    def load(self) -> None:
        self.loading.set()
        self.release.wait(10)


def test_close_during_start_before_the_engine_exists_wins() -> None:
    vad = BlockingVad()
    rec = make(vad_detector=vad)
    outcome: list[object] = []

    def run_start() -> None:
        try:
            rec.start()
            outcome.append("returned")
        except Exception as exc:
            outcome.append(exc)

    starter = threading.Thread(target=run_start, name="test-starter")
    starter.start()
    try:
        assert vad.loading.wait(5)
        rec.close()
        assert rec.state is RecorderState.CLOSED
        vad.release.set()
        starter.join(10)
        assert outcome and isinstance(outcome[0], LifecycleError), outcome
        assert "close()" in str(outcome[0])
        assert rec.state is RecorderState.CLOSED, f"state after close(): {rec.state}"
        assert rec.engine_pid is None
    finally:
        vad.release.set()
        starter.join(10)


def test_close_twice_and_concurrently_is_safe() -> None:
    rec = make()
    rec.start()
    feed(rec, AUDIO)
    closers = [threading.Thread(target=rec.close, name=f"test-closer-{i}") for i in range(3)]
    t0 = time.monotonic()
    for t in closers:
        t.start()
    for t in closers:
        t.join(5)
    assert not any(t.is_alive() for t in closers)
    assert time.monotonic() - t0 < 3.0
    assert timed(rec.close) < 0.05  # a later close() is a no-op
    assert rec.state is RecorderState.CLOSED


# ----------------------------------------------------------------- Ctrl+C on the CLI


def _pulse_reason() -> str | None:
    if shutil.which("pactl") is None:
        return "'pactl' is not installed (apt-get install pulseaudio-utils)"
    try:
        info = subprocess.run(["pactl", "info"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pactl failed: {exc}"
    if info.returncode != 0:
        return "no PulseAudio server; start the virtual microphone: .ci/virtual-mic"
    return None


@pytest.fixture
def virtual_mic() -> None:
    reason = _pulse_reason()
    if reason is not None:
        if os.environ.get("CI"):  # CI starts the virtual microphone: never skip there
            pytest.fail(reason)
        pytest.skip(reason)


def _wait_for_line(stream: object, needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    found = threading.Event()

    def reader() -> None:
        try:
            for line in stream:  # type: ignore[attr-defined]
                lines.append(line)
                if needle in line:
                    found.set()
        except (OSError, ValueError):  # the test closed the pipe
            pass
        found.set()

    threading.Thread(target=reader, name="test-reader", daemon=True).start()
    found.wait(timeout)
    return lines


def _sigint_default() -> None:
    """In the CLI's process: SIGINT as a terminal gives it. A test run started in the
    background of a shell (``scripts/test &``) inherits SIGINT ignored, and Python then
    installs no KeyboardInterrupt for it: Ctrl+C would be ignored by design, not by a bug."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.mic
@pytest.mark.parametrize("group", [False, True], ids=["sigint-to-cli", "ctrl-c-to-group"])
def test_ctrl_c_on_listen_exits_fast_with_status_0_and_no_child(virtual_mic: None,
                                                                group: bool) -> None:
    # group=True is what a terminal does on Ctrl+C: SIGINT to the whole process group,
    # the engine process included (which must ignore it and let the parent shut it down).
    # -X faulthandler: if the exit hangs, SIGABRT makes it print every thread's stack.
    proc = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "harken", "listen", "--engine",
         "scripted", "--vad", "energy"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=_sigint_default)
    try:
        lines = _wait_for_line(proc.stderr, "Listening", 30)
        assert any("Listening" in line for line in lines), \
            f"no 'Listening' line; exit {proc.poll()}; stderr: {''.join(lines)}"
        # harken/cli/main.py prints "Listening" just before its try/except
        # KeyboardInterrupt, so a SIGINT within microseconds of the line exits with 130
        # (reported); wait a human's reaction time.
        time.sleep(0.3)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the engine process is not running"
        t0 = time.monotonic()
        if group:
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        try:
            status = proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # the stacks of the hang, for the report
            time.sleep(1.0)
            pytest.fail(f"no exit within 5 s of SIGINT; stderr (with the stacks): "
                        f"{''.join(lines)}")
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        assert proc.stderr is not None
        proc.stderr.close()
    assert elapsed < 2.0, f"exit took {elapsed:.2f} s"
    assert status == 0, f"exit status {status}; stderr: {''.join(lines)}"
    left = [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"child processes left running: {left}"
