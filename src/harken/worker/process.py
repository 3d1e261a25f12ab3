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

The child's lifecycle (start, ready, watchdog, restart, close) is
:class:`~harken.worker.supervisor.ChildSupervisor`'s, shared with the speech engine program;
this module adds the requests: what is pending, in flight, cancelled and tried is kept by
:class:`~harken.worker.request_book.RequestBook`, sent by the writer and answered through
the reader.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from ..config import EngineConfig
from ..engine.base import EngineOutput, TranscribeRequest
from ..errors import ConfigError, EngineError, LifecycleError, WorkerCrashed, WorkerError
from .child_handle import Child, hang_reason
from .protocol import Message, encode_audio, write_message
from .request_book import RequestBook
from .supervisor import ChildSupervisor, Later, State

__all__ = ["EngineProcess"]

logger = logging.getLogger(__name__)

_MAX_WAITING_FINALS = 1024


class EngineProcess(ChildSupervisor):
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

    _PROGRAM = "harken.worker"
    _WHAT = "engine process"
    _THREAD_PREFIX = "harken-engine"
    _START_SLACK_S = 5.0  # the watchdog kills a slow child; its death names the timeout

    def __init__(self, config: EngineConfig, *,
                 on_result: Callable[[TranscribeRequest, EngineOutput, float, int], None],
                 on_failed: Callable[[TranscribeRequest, BaseException], None],
                 on_error: Callable[[BaseException, bool], None],
                 start_timeout_s: float = 120.0, request_timeout_s: float = 60.0,
                 max_attempts: int = 3, python: str | None = None) -> None:
        if not isinstance(config, EngineConfig):
            raise ConfigError(f"config must be an EngineConfig, got {type(config).__name__}")
        super().__init__(start_timeout_s=start_timeout_s, request_timeout_s=request_timeout_s,
                         max_attempts=max_attempts, python=python)
        self._config = config
        self._on_result = on_result
        self._on_failed = on_failed
        self._on_error = on_error
        self._book = RequestBook(_MAX_WAITING_FINALS)
        self._control: collections.deque[tuple[str, dict[str, Any]]] = collections.deque()
        self._pings: dict[int, threading.Event] = {}
        self._ping_seq = 0

    # ------------------------------------------------------------------ public API

    @property
    def pending(self) -> int:
        """Requests submitted and not yet answered, failed or cancelled."""
        with self._cond:
            return self._book.active

    @property
    def ready_info(self) -> dict[str, Any]:
        """The "ready" message's info from the current child (engine, model, load_seconds)."""
        with self._cond:
            return dict(self._info)

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
        self._start()

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
            self._require_running("submit")
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
            if self._state is not State.RUNNING:
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
        super().close(timeout)

    # ------------------------------------------------------------------ supervisor hooks

    def _init_engine(self) -> dict[str, Any]:
        return self._config.to_dict()

    def _loops(self) -> list[tuple[str, Callable[[], None]]]:
        reader, watchdog = super()._loops()
        return [reader, ("-writer", self._write_loop), watchdog]

    def _hang_reason(self, child: Child, now: float) -> str | None:
        return hang_reason(child, self._book.in_flight(child.gen), now=now,
                           last_progress=self._last_progress,
                           start_timeout_s=self._start_timeout_s,
                           request_timeout_s=self._request_timeout_s)

    def _lost(self, child: Child, how: str, crash: WorkerCrashed) -> Later:
        # the writer sends the rest to the new child: the book knows it was not answered
        return [self._later(self._on_failed, entry.request, crash)
                for entry in self._book.child_lost(child.gen, self._max_attempts)]

    def _drain(self, error: BaseException) -> Later:
        return [self._later(self._on_failed, entry.request, error)
                for entry in self._book.drain()]

    def _report(self, error: BaseException, fatal: bool) -> None:
        self._call(self._on_error, error, fatal)

    def _before_stop(self, timeout: float, deadline: float) -> None:
        writer = next((t for t in self._threads if t.name == "harken-engine-writer"), None)
        if writer is not None and writer is not threading.current_thread():
            writer.join(max(0.0, min(timeout / 4, deadline - time.monotonic())))

    def _closed(self) -> None:
        if self._book:
            logger.debug("closed with %d unanswered request(s)", len(self._book))
        self._book.clear()

    # ------------------------------------------------------------------ writer thread

    def _next_job(self) -> tuple[IO[bytes], str, dict[str, Any], bytes] | None:
        """Wait for something to send (lock held); None when the writer should stop."""
        while True:
            if self._state in (State.CLOSING, State.CLOSED, State.FAILED) \
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
                    send_shutdown = (self._state is State.CLOSING and child is not None
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

    # ------------------------------------------------------------------ reader thread

    def _answer(self, child: Child, message: Message) -> None:
        header = message.header
        if message.type == "pong":
            with self._cond:
                event = self._pings.get(int(header["id"]))
            if event is not None:
                event.set()
        elif message.type == "result":
            with self._cond:
                self._last_progress = time.monotonic()
                self._crashes = 0
                entry = self._book.answered(int(header["id"]))
                self._cond.notify_all()
            if entry is not None and not entry.cancelled:
                output = EngineOutput.from_dict(header["output"])
                self._call(self._on_result, entry.request, output,
                           float(header["compute_seconds"]), entry.attempts)
        elif message.type == "failed":
            self._request_failed(int(header["id"]), header)
        elif message.type != "shutdown_ack":
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
