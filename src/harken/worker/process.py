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

What is pending, in flight, cancelled and tried is kept by
:class:`~harken.worker.request_book.RequestBook`; launching, stopping and describing one
child is in :mod:`harken.worker.child_handle`.

It is one piece (over the ~400-line guide) because the three threads share one child's
lifecycle, its request book and its restart: split, each part would reach into the others.
"""

from __future__ import annotations

import collections
import enum
import logging
import threading
import time
import weakref
from collections.abc import Callable
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
from .child_handle import (
    Child,
    Shared,
    abandon,
    child_logger,
    close_pipes,
    hang_reason,
    launch,
    not_ready_error,
    reap,
    relay_log,
    stop_child,
)
from .protocol import Message, check_message, encode_audio, read_message, write_message
from .request_book import Pending, RequestBook

__all__ = ["EngineProcess"]

logger = logging.getLogger(__name__)

_WATCHDOG_PERIOD_S = 0.1
_MAX_WAITING_FINALS = 1024


class _State(enum.Enum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    CLOSING = "closing"
    CLOSED = "closed"


class EngineProcess:
    """Runs a transcription engine in its own process and supervises it.

    Args:
        config: the engine to build in the child (sent as ``config.to_dict()``).
        on_result: ``(request, output, compute_seconds, attempts)`` for each answered
            request; called on the reader thread.
        on_failed: ``(request, exc)`` for a request that failed for good: the engine raised
            on every one of ``max_attempts`` tries (:class:`EngineError`), or the child
            crashed that often while holding it (:class:`WorkerCrashed`), or a partial
            stopped for a waiting final (:class:`EngineError`, error_type
            "PartialInterrupted", at once). Partials replaced by newer ones and cancelled
            requests are dropped without a call.
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
        self._child: Child | None = None
        self._gen = 0
        self._book = RequestBook(_MAX_WAITING_FINALS)
        self._control: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._pings: dict[int, threading.Event] = {}
        self._ping_seq = 0
        self._last_progress = 0.0
        self._crashes = 0
        self._restarts = 0
        self._ready_info: dict[str, Any] = {}
        self._start_error: BaseException | None = None
        self._fatal: BaseException | None = None
        self._shared = Shared()
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ public API

    @property
    def pending(self) -> int:
        """Requests submitted and not yet answered, failed or cancelled."""
        with self._cond:
            return self._book.active

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
            self._finalizer = weakref.finalize(self, abandon, self._shared)
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
            self._book.add(request)
            self._cond.notify_all()

    def cancel(self, request_id: int) -> None:
        """Forget a submitted request; never blocks. Thread-safe.

        No ``on_result`` or ``on_failed`` call is made for it afterwards. A request still
        queued here is never sent; one queued in the child is removed there (a "cancel"
        message); one the child is already transcribing stops after its encoder where the
        engine can (else runs to the end), and its answer is dropped. An unknown, answered
        or already cancelled id is ignored, and so is a call
        before ``start()`` or after ``close()``.

        Args:
            request_id: the ``request_id`` of a submitted :class:`TranscribeRequest`.
        """
        with self._cond:
            entry = self._book.cancel(request_id)
            if entry is None:
                return
            if entry.cancelled:  # the child holds it: have it dropped there
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
            stop_child(child, started + timeout / 2, deadline)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.05, deadline - time.monotonic()))
                if thread.is_alive():
                    logger.warning("thread %s did not stop within the close timeout",
                                   thread.name)
        for proc in self._shared.procs:
            close_pipes(proc)
        with self._cond:
            if self._book:
                logger.debug("closed with %d unanswered request(s)", len(self._book))
            self._book.clear()
            self._state = _State.CLOSED
            self._cond.notify_all()
        if self._finalizer is not None:
            self._finalizer.detach()

    # ------------------------------------------------------------------ child handling

    def _thread(self, name: str) -> threading.Thread | None:
        return next((t for t in self._threads if t.name == name), None)

    def _spawn(self) -> None:
        """Start a child and send it "init" (call with the lock held)."""
        proc = launch(self._python)
        self._shared.procs.append(proc)
        self._gen += 1
        self._child = Child(proc, self._gen, time.monotonic())
        logger.debug("started engine process %d (generation %d)", proc.pid, self._gen)
        level = child_logger.getEffectiveLevel()
        stdin = proc.stdin
        if stdin is None:  # pragma: no cover - stdin=PIPE always gives a stream
            raise WorkerError("the engine process has no stdin pipe")
        try:
            write_message(stdin, "init", {"engine": self._config.to_dict(), "log_level": level})
        except OSError as exc:  # it died at once; the reader reports it
            logger.debug("could not send init to engine process %d: %s", proc.pid, exc)

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
                entry = self._book.next_to_send(child.gen)
                if entry is not None:
                    if not self._book.in_flight(child.gen):
                        self._last_progress = time.monotonic()  # the child was idle until now
                    self._book.mark_sent(entry, child.gen, time.monotonic())
                    req = entry.request
                    return stdin, "transcribe", {"id": req.request_id, "kind": req.kind,
                                                 "hints": req.hints.to_dict()}, \
                        encode_audio(req.audio)
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
                reason = hang_reason(child, self._book.in_flight(child.gen),
                                     now=time.monotonic(), last_progress=self._last_progress,
                                     start_timeout_s=self._start_timeout_s,
                                     request_timeout_s=self._request_timeout_s)
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

    def _dispatch(self, child: Child, message: Message) -> None:
        header = message.header
        if message.type == "log":
            relay_log(header)
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
                entry = self._book.answered(int(header["id"]))
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
        error_type = str(header["error_type"])
        with self._cond:
            self._last_progress = time.monotonic()
            outcome = self._book.failed(request_id, error_type, self._max_attempts)
            self._cond.notify_all()
        if outcome is None:
            return
        entry, give_up = outcome
        if error_type not in ("Superseded", "PartialInterrupted"):
            logger.debug("request %d failed in the engine (attempt %d): %s", request_id,
                         entry.attempts, header.get("traceback", ""))
        if give_up:
            error = EngineError(str(header["message"]), error_type)
            self._call(self._on_failed, entry.request, error)

    def _child_gone(self, child: Child, problem: BaseException | None) -> bool:
        """Handle EOF (or garbage) from a child; return True to read from a new child."""
        how = reap(child, problem)
        failed: list[Pending] = []
        fatal: BaseException | None = None
        crash: WorkerCrashed | None = None
        with self._cond:
            if self._state in (_State.CLOSING, _State.CLOSED) or self._shared.abandoned:
                return False
            if self._state is _State.STARTING:
                self._start_error = not_ready_error(child, how, self._start_timeout_s)
                self._cond.notify_all()
                return False
            if not child.ready:
                fatal = not_ready_error(child, how, self._start_timeout_s)
            else:
                self._crashes += 1
                crash = WorkerCrashed(f"the engine process {child.proc.pid} stopped ({how})")
                if self._crashes > self._max_attempts:
                    fatal = WorkerCrashed(f"the engine process crashed {self._crashes} times "
                                          f"in a row; giving up (last: {how})")
            if fatal is None:
                failed = self._book.child_lost(child.gen, self._max_attempts)
                try:
                    self._spawn()
                except WorkerError as exc:
                    fatal = exc
            if fatal is not None:
                crash = None  # reported once, as the fatal error
                self._state = _State.FAILED
                self._fatal = fatal
                failed = self._book.drain()
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
