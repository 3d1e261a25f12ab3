"""ChildSupervisor: the lifecycle harken's two child programs share.

The engine process (:class:`~harken.worker.process.EngineProcess`) and the speech engine
program (:class:`~harken.speak.host.SpeechEngineHost`) are supervised alike: ``start()``
runs ``python -m <program>`` (never multiprocessing), sends "init" and waits for "ready"
within ``start_timeout_s``; a reader thread reads the child's messages (relaying its "log"
records) and notices when it ends; a watchdog thread kills a child that hangs, which sends
it down the crash path; a dead child is replaced, up to ``max_attempts`` crashes in a row,
and a replacement that cannot start is fatal; ``close()`` stops the child and joins the
threads within a timeout. This base owns that state machine, the threads, the child handle
and the restart bookkeeping. A subclass says what the child's other messages mean
(:meth:`_answer`), when a child counts as hung (:meth:`_hang_reason`) and what becomes of
its requests when a child dies or the supervisor closes (the ``_lost`` ... ``_closed``
hooks). Hooks marked "lock held" run under ``self._cond``; the callables they return run
after it is released, on the same thread.

It is one piece (a little over the ~400-line guide) because the state machine, the reader,
the watchdog and the restart share one lock and one child: split, each part would reach
into the others' state.
"""

from __future__ import annotations

import enum
import functools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from .._threads import join_thread
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
    launch,
    not_ready_error,
    reap,
    relay_log,
    stop_child,
)
from .protocol import Message, check_message, read_message, write_message

__all__ = ["ChildSupervisor", "Later", "State"]

logger = logging.getLogger(__name__)

_WATCHDOG_PERIOD_S = 0.1
_S = TypeVar("_S", bound="ChildSupervisor")

Later = list[Callable[[], None]]
"""Calls to make once the lock is released (user callbacks never run under it)."""


class State(enum.Enum):
    """Where a supervisor is in its life; it starts once and closes once."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    CLOSING = "closing"
    CLOSED = "closed"


class ChildSupervisor:
    """Starts, watches, restarts and stops one child program (see the module docstring).

    Args:
        start_timeout_s: seconds a child may take to report ready (its model or voice).
        request_timeout_s: how long a child holding requests may stay silent, in seconds
            (what exactly counts is the subclass's :meth:`_hang_reason`).
        max_attempts: how many crashes in a row are tolerated (and, in the subclasses, how
            often one request is tried).
        python: the interpreter to run the child with; defaults to ``sys.executable``.

    Raises:
        ConfigError: a timeout is not positive, max_attempts < 1, or python is not a path.
    """

    _PROGRAM: ClassVar[str]
    """The module run as ``python -m``."""
    _WHAT: ClassVar[str]
    """What the child is called in messages ("engine process")."""
    _THREAD_PREFIX: ClassVar[str]
    """Thread names are this plus "-reader", "-watchdog" (and a subclass's own)."""
    _START_SLACK_S: ClassVar[float] = 0.0
    """Extra seconds start() waits past ``start_timeout_s``, for a watchdog that kills a
    slow child to have its death reported first."""

    def __init__(self, *, start_timeout_s: float, request_timeout_s: float,
                 max_attempts: int, python: str | None) -> None:
        for name, value in (("start_timeout_s", start_timeout_s),
                            ("request_timeout_s", request_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) \
                or max_attempts < 1:
            raise ConfigError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        if python is not None and not (isinstance(python, str) and python):
            raise ConfigError(f"python must be the path of an interpreter, got {python!r}")
        self._start_timeout_s = float(start_timeout_s)
        self._request_timeout_s = float(request_timeout_s)
        self._max_attempts = max_attempts
        self._python = python
        self._cond = threading.Condition()
        self._state = State.CREATED
        self._child: Child | None = None
        self._gen = 0
        self._crashes = 0
        self._restarts = 0
        self._info: dict[str, Any] = {}
        self._last_progress = 0.0
        """``time.monotonic()`` seconds of the child's last sign of work (for the watchdog)."""
        self._start_error: BaseException | None = None
        self._fatal: BaseException | None = None
        self._shared = Shared()
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ public API

    @property
    def running(self) -> bool:
        """True between a successful ``start()`` and ``close()`` (or a fatal failure)."""
        with self._cond:
            return self._state is State.RUNNING

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

    def __enter__(self: _S) -> _S:
        self._start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the child and the threads; idempotent and bounded by about ``timeout`` s.

        A ready child gets up to ``timeout / 2`` to exit by itself (it was sent "shutdown"),
        then SIGTERM, then SIGKILL. Safe after a failed ``start()`` and from inside a
        callback.
        """
        started = time.monotonic()
        deadline = started + max(0.0, timeout)
        with self._cond:
            if self._state is State.CLOSED:
                return
            if self._state is State.CLOSING:
                self._cond.wait_for(lambda: self._state is State.CLOSED, timeout=timeout)
                return
            self._state = State.CLOSING
            child = self._child
            later = self._closing()
            self._cond.notify_all()
        self._before_stop(timeout, deadline)
        if child is not None:
            stop_child(child, started + timeout / 2, deadline)
        for thread in self._threads:
            join_thread(thread, deadline - time.monotonic(), logger)
        for proc in self._shared.procs:
            close_pipes(proc)
        with self._cond:
            self._closed()
            self._state = State.CLOSED
            self._cond.notify_all()
        if self._finalizer is not None:
            self._finalizer.detach()
        _run(later)

    # ------------------------------------------------------------------ for subclasses

    def _start(self) -> None:
        """Start the child and block until it is ready (see the subclasses' ``start()``)."""
        with self._cond:
            if self._state is not State.CREATED:
                raise LifecycleError(f"{type(self).__name__}.start() called while "
                                     f"{self._state.value}; it starts once: create a new one")
            self._state = State.STARTING
            self._finalizer = weakref.finalize(self, abandon, self._shared)
            try:
                self._spawn()
            except WorkerError:
                self._state = State.FAILED
                raise
            for suffix, target in self._loops():
                thread = threading.Thread(target=target, name=self._THREAD_PREFIX + suffix,
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
            ready = self._cond.wait_for(lambda: self._state is not State.STARTING
                                        or self._start_error is not None,
                                        timeout=self._start_timeout_s + self._START_SLACK_S)
            if self._state is State.RUNNING:
                return
            error = self._start_error or WorkerStartTimeout(
                f"the {self._WHAT} did not become ready within {self._start_timeout_s} s")
            if not ready and self._child is not None:
                self._child.kill_reason = "it did not become ready in time"
        self.close(timeout=1.0)
        raise error

    def _require_running(self, method: str) -> None:
        """Raise unless requests may be made now (lock held).

        Raises:
            WorkerError: the child failed for good (the fatal error).
            LifecycleError: not started, or closed.
        """
        if self._fatal is not None:
            raise self._fatal
        if self._state is not State.RUNNING:
            raise LifecycleError(f"{type(self).__name__}.{method}() called while "
                                 f"{self._state.value}; call start() first")

    def _send(self, type: str, header: dict[str, Any], payload: bytes = b"") -> None:
        """Write one message to the current child (lock held); a dead pipe is ignored:
        the reader notices the exit and restarts the child.
        """
        child = self._child
        if child is None or child.proc.stdin is None:
            return
        try:
            write_message(child.proc.stdin, type, header, payload)
        except (OSError, ValueError) as exc:
            logger.debug("could not send %s to %s %d: %s", type, self._WHAT, child.proc.pid,
                         exc)

    def _call(self, callback: Callable[..., object], *args: Any) -> None:
        """Call a user's callback; what it raises is logged, never lost in a thread."""
        try:
            callback(*args)
        except Exception:
            logger.exception("a %s callback raised", type(self).__name__)

    def _later(self, callback: Callable[..., object], *args: Any) -> Callable[[], None]:
        """A :data:`Later` entry: ``callback(*args)`` through :meth:`_call`."""
        return functools.partial(self._call, callback, *args)

    def _loops(self) -> list[tuple[str, Callable[[], None]]]:
        """The threads to run: (name suffix, target); a subclass may add its own."""
        return [("-reader", self._read_loop), ("-watchdog", self._watch_loop)]

    # ------------------------------------------------------------------ hooks

    def _init_engine(self) -> dict[str, Any]:
        """The "engine" of the "init" message: what the child builds (lock held)."""
        raise NotImplementedError

    def _answer(self, child: Child, message: Message) -> None:
        """Handle a message other than "log", "ready" and a load failure (reader thread)."""
        raise NotImplementedError

    def _hang_reason(self, child: Child, now: float) -> str | None:
        """Why the watchdog must kill ``child`` now, or None (lock held; ``now`` is
        ``time.monotonic()`` seconds).
        """
        raise NotImplementedError

    def _lost(self, child: Child, how: str, crash: WorkerCrashed) -> Later:
        """A ready child died (``how``: see :func:`~harken.worker.child_handle.reap`) and
        will be replaced: give up what it failed too often (lock held).
        """
        return []

    def _resend(self) -> Later:
        """The replacement was started: send it what is pending (lock held)."""
        return []

    def _drain(self, error: BaseException) -> Later:
        """The supervisor failed for good: fail every pending request with ``error``
        (lock held).
        """
        return []

    def _report(self, error: BaseException, fatal: bool) -> None:
        """A crash (``fatal=False``: it is being restarted) or the fatal error; no lock."""

    def _closing(self) -> Later:
        """close() has begun (lock held); the calls run when it ends."""
        return []

    def _before_stop(self, timeout: float, deadline: float) -> None:
        """close(), before the child is stopped (no lock); ``deadline`` is monotonic s."""

    def _closed(self) -> None:
        """close(), after the child and the threads stopped (lock held)."""

    # ------------------------------------------------------------------ the child

    def _spawn(self) -> None:
        """Start a child and send it "init" (lock held)."""
        proc = launch(self._python, self._PROGRAM, self._WHAT)
        self._shared.procs.append(proc)
        self._gen += 1
        self._child = Child(proc, self._gen, time.monotonic(), what=self._WHAT)
        logger.debug("started %s %d (generation %d)", self._WHAT, proc.pid, self._gen)
        self._send("init", {"engine": self._init_engine(),
                            "log_level": child_logger.getEffectiveLevel()})

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
        elif message.type == "ready":
            with self._cond:
                child.ready = True
                self._info = dict(header["info"])
                if self._state is State.STARTING:
                    self._state = State.RUNNING
                elif child.gen > 1:
                    self._restarts += 1
                self._last_progress = time.monotonic()
                self._cond.notify_all()
            logger.debug("%s %d ready: %s", self._WHAT, child.proc.pid, header["info"])
        elif message.type == "failed" and header["id"] is None:
            child.init_error = EngineError(str(header["message"]), str(header["error_type"]))
            logger.debug("the %s failed to load:\n%s", self._WHAT, header.get("traceback", ""))
        else:
            self._answer(child, message)

    def _watch_loop(self) -> None:
        with self._cond:
            while self._state in (State.STARTING, State.RUNNING) \
                    and not self._shared.abandoned:
                self._cond.wait(_WATCHDOG_PERIOD_S)
                child = self._child
                if child is None or child.kill_reason is not None \
                        or child.proc.returncode is not None:
                    continue
                reason = self._hang_reason(child, time.monotonic())
                if reason is not None:
                    child.kill_reason = reason
                    logger.warning("killing %s %d: %s", self._WHAT, child.proc.pid, reason)
                    try:
                        child.proc.kill()
                    except OSError:  # pragma: no cover - already gone
                        pass

    def _child_gone(self, child: Child, problem: BaseException | None) -> bool:
        """Handle EOF (or garbage) from a child; return True to read from its replacement."""
        how = reap(child, problem)
        later: Later = []
        fatal: BaseException | None = None
        crash: WorkerCrashed | None = None
        with self._cond:
            if self._state in (State.CLOSING, State.CLOSED) or self._shared.abandoned:
                return False
            if self._state is State.STARTING:
                self._start_error = not_ready_error(child, how, self._start_timeout_s)
                self._cond.notify_all()
                return False
            if not child.ready:
                fatal = not_ready_error(child, how, self._start_timeout_s)
            else:
                self._crashes += 1
                crash = WorkerCrashed(f"the {self._WHAT} {child.proc.pid} stopped ({how})")
                if self._crashes > self._max_attempts:
                    fatal = WorkerCrashed(f"the {self._WHAT} crashed {self._crashes} times "
                                          f"in a row; giving up (last: {how})")
            if fatal is None and crash is not None:
                later = self._lost(child, how, crash)
                try:
                    self._spawn()
                except WorkerError as exc:
                    fatal = exc
            if fatal is None:
                later = self._resend() + later
            else:
                crash = None  # reported once, as the fatal error
                self._state = State.FAILED
                self._fatal = fatal
                later += self._drain(fatal)
            self._cond.notify_all()
        if crash is not None:
            logger.warning("%s; restarting it", crash)
            self._report(crash, False)
        _run(later)
        if fatal is not None:
            logger.error("the %s cannot be restarted: %s", self._WHAT, fatal)
            self._report(fatal, True)
            return False
        return True


def _run(later: Later) -> None:
    for call in later:
        call()
