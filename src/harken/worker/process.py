"""EngineProcess: the parent-side supervisor of the engine process.

``start()`` runs ``[python, "-m", "harken.worker"]`` with ``subprocess.Popen`` (never
multiprocessing, so the user's main module is never re-imported), sends "init" and waits for
"ready". Three threads, all owned here and joined by ``close()``:

- "harken-engine-writer" sends queued requests to the child, finals in order and at most one
  partial in flight (a queued partial is replaced by a newer one), plus "cancel", pings and
  "shutdown";
- "harken-engine-reader" reads answers and calls ``on_result`` / ``on_failed`` / ``on_error``
  (so callbacks run on this thread and must be quick), relays the child's log records, and
  restarts a crashed child, sending its unanswered requests again;
- "harken-engine-watchdog" kills a child that takes too long to become ready or to answer,
  which sends it down the crash path.
"""

from __future__ import annotations

import collections
import enum
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from ..config import EngineConfig
from ..engine.base import EngineOutput, TranscribeRequest
from ..errors import (
    ConfigError,
    EngineError,
    LifecycleError,
    ProtocolError,
    WorkerCrashed,
    WorkerError,
    WorkerStartTimeout,
)
from .protocol import Message, check_message, encode_audio, read_message, write_message

__all__ = ["EngineProcess"]

logger = logging.getLogger(__name__)
_child_logger = logging.getLogger("harken.worker.child")

_SRC_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_WATCHDOG_PERIOD_S = 0.1
_MAX_WAITING_FINALS = 1024


class _State(enum.Enum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(eq=False)
class _Pending:
    request: TranscribeRequest
    attempts: int = 0
    """How many times the request has been sent to a child."""
    sent_gen: int | None = None
    """The generation of the child holding it; None while it waits to be sent."""
    sent_at: float = 0.0
    unstarted: int = 0
    """Sends lost with a crashed child before it began on this request (not tries)."""
    cancelled: bool = False
    """cancel() was called while the child held it: its answer is dropped when it comes."""

    @property
    def tries(self) -> int:
        """Sends the engine worked on: what ``max_attempts`` limits."""
        return self.attempts - self.unstarted


@dataclass(eq=False)
class _Child:
    proc: subprocess.Popen[bytes]
    gen: int
    started_at: float
    ready: bool = False
    init_error: EngineError | None = None
    kill_reason: str | None = None
    """Why the watchdog killed it (start timeout or a hung request), if it did."""


@dataclass(eq=False)
class _Shared:
    """What the safety-net finalizer needs, without a reference to the EngineProcess."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    abandoned: bool = False


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    """Close the parent's ends of a child's stdin and stdout, ignoring errors."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass


def _abandon(shared: _Shared) -> None:
    """weakref.finalize callback: kill children of an EngineProcess nobody closed."""
    shared.abandoned = True
    alive = [p for p in shared.procs if p.poll() is None]
    for proc in alive:
        proc.kill()
    for proc in shared.procs:
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not wait
            pass
        _close_pipes(proc)
    if alive:
        warnings.warn("an EngineProcess was not closed; its engine process was killed. "
                      "Call close() or use it as a context manager.", ResourceWarning,
                      stacklevel=1)


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


class EngineProcess:
    """Runs a transcription engine in its own process and supervises it.

    Args:
        config: the engine to build in the child (sent as ``config.to_dict()``).
        on_result: ``(request, output, compute_seconds, attempts)`` for each answered
            request; called on the reader thread.
        on_failed: ``(request, exc)`` for a request that failed for good: the engine raised
            on every one of ``max_attempts`` tries (:class:`EngineError`), or the child
            crashed that often while holding it (:class:`WorkerCrashed`). Partials replaced
            by newer ones and cancelled requests are dropped without a call.
        on_error: ``(exc, fatal)`` for problems with the process itself: a crash
            (:class:`WorkerCrashed`, ``fatal=False``: it is being restarted) or a restart
            that failed (``fatal=True``: every pending request then goes to ``on_failed``
            and ``submit()`` raises ``exc``).
        start_timeout_s: seconds the child may take to report ready (model load).
        request_timeout_s: a child that answers nothing for this many seconds plus twice
            the longest in-flight audio duration is considered hung, killed and restarted.
        max_attempts: how often one request is sent before it is reported failed.
        python: the interpreter to run the child with; defaults to ``sys.executable``.

    Raises:
        ConfigError: a timeout is not positive or max_attempts < 1.
    """

    def __init__(self, config: EngineConfig, *,
                 on_result: Callable[[TranscribeRequest, EngineOutput, float, int], None],
                 on_failed: Callable[[TranscribeRequest, BaseException], None],
                 on_error: Callable[[BaseException, bool], None],
                 start_timeout_s: float = 120.0, request_timeout_s: float = 60.0,
                 max_attempts: int = 3, python: str | None = None) -> None:
        if not isinstance(config, EngineConfig):
            raise ConfigError(f"config must be an EngineConfig, got {type(config).__name__}")
        for name, value in (("start_timeout_s", start_timeout_s),
                            ("request_timeout_s", request_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) \
                or max_attempts < 1:
            raise ConfigError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        if python is not None and not (isinstance(python, str) and python):
            raise ConfigError(f"python must be the path of an interpreter, got {python!r}")
        self._config = config
        self._on_result = on_result
        self._on_failed = on_failed
        self._on_error = on_error
        self._start_timeout_s = float(start_timeout_s)
        self._request_timeout_s = float(request_timeout_s)
        self._max_attempts = max_attempts
        self._python = python
        self._cond = threading.Condition()
        self._state = _State.CREATED
        self._child: _Child | None = None
        self._gen = 0
        self._pending: dict[int, _Pending] = {}
        self._finals: collections.deque[int] = collections.deque()
        self._partial: int | None = None
        self._control: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._pings: dict[int, threading.Event] = {}
        self._ping_seq = 0
        self._last_progress = 0.0
        self._crashes = 0
        self._restarts = 0
        self._ready_info: dict[str, Any] = {}
        self._start_error: BaseException | None = None
        self._fatal: BaseException | None = None
        self._shared = _Shared()
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ public API

    @property
    def pending(self) -> int:
        """Requests submitted and not yet answered, failed or cancelled."""
        with self._cond:
            return sum(not p.cancelled for p in self._pending.values())

    @property
    def pid(self) -> int | None:
        """The process id of the current child, or None when there is none running."""
        with self._cond:
            child = self._child
            if child is None or child.proc.returncode is not None:
                return None
            return child.proc.pid

    @property
    def restarts(self) -> int:
        """How many times a crashed or hung child was replaced by one that became ready."""
        with self._cond:
            return self._restarts

    @property
    def ready_info(self) -> dict[str, Any]:
        """The "ready" message's info from the current child (engine, model, load_seconds)."""
        with self._cond:
            return dict(self._ready_info)

    def __enter__(self) -> EngineProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the engine process and block until its engine is loaded.

        Raises:
            LifecycleError: start() was already called.
            EngineError: the engine failed to load (e.g. a missing model path, named in the
                message); ``error_type`` keeps the original exception's name.
            WorkerStartTimeout: not ready within ``start_timeout_s``.
            WorkerCrashed: the child exited before it was ready.
            WorkerError: the interpreter could not be started.
        """
        with self._cond:
            if self._state is not _State.CREATED:
                raise LifecycleError(f"EngineProcess.start() called while {self._state.value}; "
                                     "an EngineProcess starts once: create a new one")
            self._state = _State.STARTING
            self._finalizer = weakref.finalize(self, _abandon, self._shared)
            try:
                self._spawn()
            except WorkerError:
                self._state = _State.FAILED
                raise
            for name, target in (("harken-engine-reader", self._read_loop),
                                 ("harken-engine-writer", self._write_loop),
                                 ("harken-engine-watchdog", self._watch_loop)):
                thread = threading.Thread(target=target, name=name, daemon=True)
                self._threads.append(thread)
                thread.start()
            self._cond.wait_for(lambda: self._state is not _State.STARTING
                                or self._start_error is not None,
                                timeout=self._start_timeout_s + 5.0)
            if self._state is _State.RUNNING:
                return
            error = self._start_error or WorkerStartTimeout(
                f"the engine process did not become ready within {self._start_timeout_s} s")
        self.close(timeout=1.0)
        raise error

    def submit(self, request: TranscribeRequest) -> None:
        """Queue a request for the engine; never blocks. Thread-safe.

        A partial replaces a queued (not yet sent) partial, which is dropped without a
        callback. Answers arrive through ``on_result`` / ``on_failed``.

        Raises:
            LifecycleError: not started, or closed; or the request id is already pending.
            WorkerError: too many finals are waiting, or the engine process failed for good
                (the error passed to ``on_error`` with ``fatal=True``).
        """
        with self._cond:
            if self._state is _State.FAILED and self._fatal is not None:
                raise self._fatal
            if self._state is not _State.RUNNING:
                raise LifecycleError(f"EngineProcess.submit() called while "
                                     f"{self._state.value}; call start() first")
            if request.request_id in self._pending:
                raise LifecycleError(f"request {request.request_id} is already pending")
            if request.kind == "partial":
                if self._partial is not None:
                    self._pending.pop(self._partial, None)
                self._partial = request.request_id
            else:
                if len(self._finals) >= _MAX_WAITING_FINALS:
                    raise WorkerError(f"{len(self._finals)} final requests are waiting for the "
                                      "engine process; it cannot keep up")
                self._finals.append(request.request_id)
            self._pending[request.request_id] = _Pending(request)
            self._cond.notify_all()

    def cancel(self, request_id: int) -> None:
        """Forget a submitted request; never blocks. Thread-safe.

        No ``on_result`` or ``on_failed`` call is made for it afterwards. A request still
        queued here is never sent; one queued in the child is removed there (a "cancel"
        message); one the child is already transcribing runs to the end and its result is
        dropped. An unknown, answered or already cancelled id is ignored, and so is a call
        before ``start()`` or after ``close()``.

        Args:
            request_id: the ``request_id`` of a submitted :class:`TranscribeRequest`.
        """
        with self._cond:
            entry = self._pending.get(request_id)
            if entry is None or entry.cancelled:
                return
            if entry.sent_gen is None:
                del self._pending[request_id]
                if self._partial == request_id:
                    self._partial = None
                try:
                    self._finals.remove(request_id)
                except ValueError:
                    pass
            else:
                entry.cancelled = True  # kept until answered: the child still holds it
                self._control.append(("cancel", {"id": request_id}))
            self._cond.notify_all()
        logger.debug("request %d cancelled", request_id)

    def ping(self, timeout: float = 5.0) -> float:
        """Check that the child answers; return the round trip in seconds.

        The child answers pings from its reader thread, even while transcribing.

        Raises:
            LifecycleError: not running.
            WorkerError: no answer within ``timeout`` seconds.
        """
        with self._cond:
            if self._state is not _State.RUNNING:
                raise LifecycleError(f"EngineProcess.ping() called while {self._state.value}")
            self._ping_seq += 1
            ping_id = self._ping_seq
            answered = threading.Event()
            self._pings[ping_id] = answered
            self._control.append(("ping", {"id": ping_id}))
            self._cond.notify_all()
        started = time.monotonic()
        try:
            if not answered.wait(timeout):
                raise WorkerError(f"the engine process did not answer a ping within {timeout} s")
        finally:
            with self._cond:
                self._pings.pop(ping_id, None)
        return time.monotonic() - started

    def close(self, timeout: float = 2.0) -> None:
        """Stop the engine process and the threads; idempotent and bounded by ~``timeout`` s.

        Sends "shutdown" and waits up to ``timeout / 2`` for the child to exit, then
        terminates it, then kills it. Requests still pending are abandoned (no callback).
        Safe after a failed ``start()`` and from inside a callback.
        """
        started = time.monotonic()
        deadline = started + max(0.0, timeout)
        with self._cond:
            if self._state is _State.CLOSED:
                return
            if self._state is _State.CLOSING:
                self._cond.wait_for(lambda: self._state is _State.CLOSED, timeout=timeout)
                return
            self._state = _State.CLOSING
            self._cond.notify_all()
            child = self._child
        writer = self._thread("harken-engine-writer")
        if writer is not None and writer is not threading.current_thread():
            writer.join(max(0.0, min(timeout / 4, deadline - time.monotonic())))
        if child is not None:
            self._stop_child(child, started + timeout / 2, deadline)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.05, deadline - time.monotonic()))
                if thread.is_alive():
                    logger.warning("thread %s did not stop within the close timeout",
                                   thread.name)
        for proc in self._shared.procs:
            _close_pipes(proc)
        with self._cond:
            if self._pending:
                logger.debug("closed with %d unanswered request(s)", len(self._pending))
            self._pending.clear()
            self._finals.clear()
            self._partial = None
            self._state = _State.CLOSED
            self._cond.notify_all()
        if self._finalizer is not None:
            self._finalizer.detach()

    # ------------------------------------------------------------------ child handling

    def _thread(self, name: str) -> threading.Thread | None:
        return next((t for t in self._threads if t.name == name), None)

    def _spawn(self) -> None:
        """Start a child and send it "init" (call with the lock held)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_SRC_DIR, env.get("PYTHONPATH", "")) if p)
        python = self._python or sys.executable
        if not python:
            raise WorkerError("cannot start the engine process: sys.executable is empty; "
                              "pass python= the path of a Python interpreter")
        try:
            proc = subprocess.Popen([python, "-m", "harken.worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=env)
        except OSError as exc:
            raise WorkerError(f"cannot start the engine process with {python!r}: {exc}") from exc
        self._shared.procs.append(proc)
        self._gen += 1
        self._child = _Child(proc, self._gen, time.monotonic())
        logger.debug("started engine process %d (generation %d)", proc.pid, self._gen)
        level = _child_logger.getEffectiveLevel()
        stdin = proc.stdin
        if stdin is None:  # pragma: no cover - stdin=PIPE always gives a stream
            raise WorkerError("the engine process has no stdin pipe")
        try:
            write_message(stdin, "init", {"engine": self._config.to_dict(), "log_level": level})
        except OSError as exc:  # it died at once; the reader reports it
            logger.debug("could not send init to engine process %d: %s", proc.pid, exc)

    def _stop_child(self, child: _Child, soft_deadline: float, deadline: float) -> None:
        proc = child.proc
        if child.ready:
            try:
                proc.wait(max(0.0, soft_deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            logger.debug("terminating engine process %d", proc.pid)
            proc.terminate()
            try:
                proc.wait(max(0.05, deadline - 0.3 - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("engine process %d ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                try:
                    proc.wait(1.0)
                except subprocess.TimeoutExpired:  # pragma: no cover
                    logger.error("engine process %d did not die after SIGKILL", proc.pid)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            logger.exception("an EngineProcess callback raised")

    # ------------------------------------------------------------------ writer thread

    def _next_job(self) -> tuple[IO[bytes], str, dict[str, Any], bytes] | None:
        """Wait for something to send (lock held); None when the writer should stop."""
        while True:
            if self._state in (_State.CLOSING, _State.CLOSED, _State.FAILED) \
                    or self._shared.abandoned:
                return None
            child = self._child
            if child is not None and child.ready and child.proc.stdin is not None:
                stdin = child.proc.stdin
                if self._control:
                    kind, header = self._control.popleft()
                    return stdin, kind, header, b""
                request_id: int | None = None
                if self._finals:
                    request_id = self._finals.popleft()
                elif self._partial is not None and not any(
                        p.sent_gen == child.gen and p.request.kind == "partial"
                        for p in self._pending.values()):
                    request_id, self._partial = self._partial, None
                entry = self._pending.get(request_id) if request_id is not None else None
                if entry is not None:
                    if not any(p.sent_gen == child.gen for p in self._pending.values()):
                        self._last_progress = time.monotonic()  # the child was idle until now
                    entry.sent_gen = child.gen
                    entry.sent_at = time.monotonic()
                    entry.attempts += 1
                    req = entry.request
                    return stdin, "transcribe", {"id": req.request_id, "kind": req.kind,
                                                 "options": dict(req.options)}, \
                        encode_audio(req.audio)
                if request_id is not None:
                    continue
            self._cond.wait()

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                job = self._next_job()
                if job is None:
                    child = self._child
                    send_shutdown = (self._state is _State.CLOSING and child is not None
                                     and child.ready and child.proc.stdin is not None)
                    stdin = child.proc.stdin if child is not None else None
                    if send_shutdown and stdin is not None:
                        job = (stdin, "shutdown", {}, b"")
                    else:
                        return
                    last = True
                else:
                    last = False
            stream, kind, header, payload = job
            try:
                write_message(stream, kind, header, payload)
            except (OSError, ValueError) as exc:
                logger.debug("could not send %s to the engine process: %s", kind, exc)
            if last:
                return

    # ------------------------------------------------------------------ watchdog thread

    def _watch_loop(self) -> None:
        with self._cond:
            while self._state in (_State.STARTING, _State.RUNNING) \
                    and not self._shared.abandoned:
                self._cond.wait(_WATCHDOG_PERIOD_S)
                child = self._child
                if child is None or child.kill_reason is not None \
                        or child.proc.returncode is not None:
                    continue
                now = time.monotonic()
                reason: str | None = None
                if not child.ready:
                    if now - child.started_at > self._start_timeout_s:
                        reason = f"it did not become ready within {self._start_timeout_s} s"
                else:
                    inflight = [p for p in self._pending.values() if p.sent_gen == child.gen]
                    if inflight:
                        since = max(self._last_progress, min(p.sent_at for p in inflight))
                        budget = self._request_timeout_s + 2 * max(
                            p.request.duration for p in inflight)
                        if now - since > budget:
                            reason = (f"it answered nothing for {now - since:.1f} s while "
                                      f"holding {len(inflight)} request(s) (limit "
                                      f"{budget:.1f} s)")
                if reason is not None:
                    child.kill_reason = reason
                    logger.warning("killing engine process %d: %s", child.proc.pid, reason)
                    try:
                        child.proc.kill()
                    except OSError:  # pragma: no cover - already gone
                        pass

    # ------------------------------------------------------------------ reader thread

    def _read_loop(self) -> None:
        while True:
            with self._cond:
                child = self._child
            if child is None or child.proc.stdout is None:
                return
            problem: BaseException | None = None
            try:
                message = read_message(child.proc.stdout)
                if message is not None:
                    check_message(message)
            except (ProtocolError, OSError, ValueError) as exc:
                message, problem = None, exc
            if message is None:
                if not self._child_gone(child, problem):
                    return
            else:
                self._dispatch(child, message)

    def _dispatch(self, child: _Child, message: Message) -> None:
        header = message.header
        if message.type == "log":
            name = str(header["name"])
            if name.startswith("harken."):
                name = name[len("harken."):]
            target = _child_logger if name in ("", "root", "worker.child") else \
                logging.getLogger(f"harken.worker.child.{name}")
            levelno = int(header["levelno"])
            if target.isEnabledFor(levelno):
                target.log(levelno, "%s", header["message"])
            return
        if message.type == "pong":
            with self._cond:
                event = self._pings.get(int(header["id"]))
            if event is not None:
                event.set()
            return
        if message.type == "ready":
            with self._cond:
                child.ready = True
                self._ready_info = dict(header["info"])
                if self._state is _State.STARTING:
                    self._state = _State.RUNNING
                elif child.gen > 1:
                    self._restarts += 1
                self._last_progress = time.monotonic()
                self._cond.notify_all()
            logger.debug("engine process %d ready: %s", child.proc.pid, header["info"])
            return
        if message.type == "failed" and header["id"] is None:
            child.init_error = EngineError(str(header["message"]), str(header["error_type"]))
            logger.debug("engine failed to load:\n%s", header.get("traceback", ""))
            return
        if message.type == "result":
            with self._cond:
                self._last_progress = time.monotonic()
                self._crashes = 0
                entry = self._pending.pop(int(header["id"]), None)
                self._cond.notify_all()
            if entry is not None and not entry.cancelled:
                output = EngineOutput.from_dict(header["output"])
                self._call(self._on_result, entry.request, output,
                           float(header["compute_seconds"]), entry.attempts)
            return
        if message.type == "failed":
            self._request_failed(int(header["id"]), header)
            return
        if message.type != "shutdown_ack":
            logger.warning("unexpected %r message from the engine process", message.type)

    def _request_failed(self, request_id: int, header: dict[str, Any]) -> None:
        give_up: _Pending | None = None
        with self._cond:
            self._last_progress = time.monotonic()
            entry = self._pending.get(request_id)
            if entry is None:
                return
            if entry.cancelled or header["error_type"] == "Cancelled":
                del self._pending[request_id]
                self._cond.notify_all()
                return
            if header["error_type"] == "Superseded" or entry.tries >= self._max_attempts:
                del self._pending[request_id]
                give_up = None if header["error_type"] == "Superseded" else entry
            else:
                entry.sent_gen = None
                self._requeue(entry)
            self._cond.notify_all()
        if header["error_type"] != "Superseded":
            logger.debug("request %d failed in the engine (attempt %d): %s", request_id,
                         entry.attempts, header.get("traceback", ""))
        if give_up is not None:
            error = EngineError(str(header["message"]), str(header["error_type"]))
            self._call(self._on_failed, give_up.request, error)

    def _requeue(self, entry: _Pending) -> None:
        """Put an unanswered request back in the send queues (lock held)."""
        request_id = entry.request.request_id
        if entry.request.kind == "partial":
            if self._partial is None:
                self._partial = request_id
            elif self._partial != request_id:
                self._pending.pop(request_id, None)  # a newer partial is waiting
        elif request_id not in self._finals:
            self._finals.append(request_id)

    def _child_gone(self, child: _Child, problem: BaseException | None) -> bool:
        """Handle EOF (or garbage) from a child; return True to read from a new child."""
        proc = child.proc
        if problem is not None and proc.poll() is None:
            logger.error("engine process %d sent garbage (%s); killing it", proc.pid, problem)
            proc.kill()
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        how = _describe_exit(proc.returncode)
        if child.kill_reason is not None:
            how = f"{how}, after harken killed it because {child.kill_reason}"
        elif problem is not None:
            how = f"{how}, after it sent a malformed message: {problem}"
        failed: list[_Pending] = []
        fatal: BaseException | None = None
        crash: WorkerCrashed | None = None
        with self._cond:
            if self._state in (_State.CLOSING, _State.CLOSED) or self._shared.abandoned:
                return False
            if self._state is _State.STARTING:
                self._start_error = self._not_ready_error(child, how)
                self._cond.notify_all()
                return False
            if not child.ready:
                fatal = self._not_ready_error(child, how)
            else:
                self._crashes += 1
                crash = WorkerCrashed(f"the engine process {proc.pid} stopped ({how})")
                if self._crashes > self._max_attempts:
                    fatal = WorkerCrashed(f"the engine process crashed {self._crashes} times "
                                          f"in a row; giving up (last: {how})")
            if fatal is None:
                inflight = [e for e in self._pending.values() if e.sent_gen == child.gen]
                # The child serves requests one at a time, in the order sent: only the
                # oldest one was being transcribed. The others never started, so this
                # send is not a try for them (else one hang behind a queue of finals
                # would use up every queued final's tries at once).
                culprit = min(inflight, key=lambda e: (e.sent_at, e.request.kind != "final"),
                              default=None)
                for entry in inflight:
                    entry.sent_gen = None
                    if entry is not culprit:
                        entry.unstarted += 1
                    if entry.cancelled:
                        del self._pending[entry.request.request_id]
                    elif entry.tries >= self._max_attempts:
                        del self._pending[entry.request.request_id]
                        failed.append(entry)
                    else:
                        self._requeue(entry)
                try:
                    self._spawn()
                except WorkerError as exc:
                    fatal = exc
            if fatal is not None:
                crash = None  # reported once, as the fatal error
                self._state = _State.FAILED
                self._fatal = fatal
                failed = [e for e in self._pending.values() if not e.cancelled]
                self._pending.clear()
                self._finals.clear()
                self._partial = None
            self._cond.notify_all()
        if crash is not None:
            logger.warning("%s; restarting it", crash)
            self._call(self._on_error, crash, False)
        for entry in failed:
            self._call(self._on_failed, entry.request, fatal or crash)  # crash: past attempts
        if fatal is not None:
            logger.error("the engine process cannot be restarted: %s", fatal)
            self._call(self._on_error, fatal, True)
            return False
        return True

    def _not_ready_error(self, child: _Child, how: str) -> BaseException:
        if child.init_error is not None:
            return child.init_error
        if child.kill_reason is not None and not child.ready:
            return WorkerStartTimeout(f"the engine process did not become ready within "
                                      f"{self._start_timeout_s} s and was killed")
        return WorkerCrashed(f"the engine process exited before it was ready ({how}); "
                             "its stderr above shows why")
