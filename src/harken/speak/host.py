"""SpeechEngineHost: one speech engine program, supervised, shared by any number of speakers.

``start()`` runs ``python -m harken.speak.child`` (never multiprocessing, so the user's main
module is never re-imported), sends it the voice and waits until the voice is loaded.
Requests (one sentence each) are served in order; each streams "audio" chunks back and ends
with "done". Many :class:`~harken.speak.speaker.Speaker` objects (phone calls, server
sessions) can share one host: pass ``host=`` to each, and start and close the host yourself::

    with SpeechEngineHost(engine="piper") as host:
        a = Speaker(host=host, on_audio=call_a.play).start()
        b = Speaker(host=host, on_audio=call_b.play).start()

Two threads, owned here and joined by ``close()``: "harken-speak-engine-reader" reads the
program's answers and calls the request's :class:`SynthesisListener` (so listeners run on
that thread and must be quick); "harken-speak-engine-watchdog" kills a program that sends
nothing for ``request_timeout_s`` while it holds sentences (a hang), which sends it down the
crash path. When the program dies (a crash, a SIGKILL, the watchdog) it is restarted
and every unanswered request is sent again, whole: its listener first gets ``on_restart``
so it can drop what it had not played yet. The request the program was working on when it
died is given up after ``max_attempts`` tries (``on_failed`` with
:class:`~harken.errors.WorkerCrashed`), and the host gives up after ``max_attempts`` crashes
in a row with no request done in between.

It is one piece (over the ~400-line guide) because the request queue, the child's restart
and the re-send of the interrupted sentence share one lock and one child; split, each part
would reach into the others' state.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..errors import (
    ConfigError,
    EngineError,
    LifecycleError,
    ProtocolError,
    WorkerCrashed,
    WorkerError,
    WorkerStartTimeout,
)
from ..worker.child_handle import (
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
from ..worker.protocol import Message, check_message, decode_audio, read_message, write_message
from .voices import VoiceSpec, resolve_voice

__all__ = ["SpeechEngineHost", "SynthesisListener"]

logger = logging.getLogger(__name__)

_PROGRAM = "harken.speak.child"


class SynthesisListener(Protocol):
    """Receives one request's audio; called on the host's reader thread."""

    def on_audio(self, request_id: int, audio: NDArray[np.float32]) -> None:
        """A chunk of the sentence (float32 mono at the host's ``sample_rate``)."""

    def on_done(self, request_id: int, samples: int) -> None:
        """The sentence is complete: ``samples`` in all since the last ``on_restart``."""

    def on_failed(self, request_id: int, error: BaseException) -> None:
        """The sentence failed for good (the engine raised, or it crashed too often)."""

    def on_restart(self, request_id: int) -> None:
        """The program died; the sentence is being synthesised again from its start."""


class _State(enum.Enum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    FAILED = "failed"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(eq=False)
class _Request:
    text: str
    speed: float
    listener: SynthesisListener
    attempts: int = 1


class SpeechEngineHost:
    """Runs one synthesis engine and voice in its own program (see the module docstring).

    Args:
        voice: the voice (None: the engine's default); see :mod:`harken.speak.voices`.
        engine: "piper", "espeak", "tone", "package.module:Class", or None for the best
            installed engine.
        options: engine options (JSON-serialisable keyword arguments of the engine).
        start_timeout_s: seconds the program may take to load the voice.
        request_timeout_s: seconds the program may stay silent while it holds sentences
            before it is considered hung, killed and restarted.
        max_attempts: how often a sentence is tried when the program dies while on it,
            and how many crashes in a row are tolerated.
        python: the interpreter to run the program with; defaults to ``sys.executable``.

    Raises:
        ConfigError: an unknown engine or voice (the message lists the installed voices),
            or a bad timeout or attempt count.
        BackendNotInstalled: the engine is not installed.
    """

    def __init__(self, voice: str | None = None, *, engine: str | None = None,
                 options: Mapping[str, Any] | None = None, start_timeout_s: float = 120.0,
                 request_timeout_s: float = 30.0, max_attempts: int = 3,
                 python: str | None = None) -> None:
        self.spec: VoiceSpec = resolve_voice(engine, voice, options)
        """The engine and voice the program loads."""
        for name, value in (("start_timeout_s", start_timeout_s),
                            ("request_timeout_s", request_timeout_s)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not value > 0:
                raise ConfigError(f"{name} must be a number of seconds > 0, got {value!r}")
        self._request_timeout_s = float(request_timeout_s)
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) \
                or max_attempts < 1:
            raise ConfigError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        self._start_timeout_s = float(start_timeout_s)
        self._max_attempts = max_attempts
        self._python = python
        self._cond = threading.Condition()
        self._state = _State.CREATED
        self._child: Child | None = None
        self._gen = 0
        self._next_id = 0
        self._requests: dict[int, _Request] = {}
        self._crashes = 0
        self._restarts = 0
        self._info: dict[str, Any] = {}
        self._start_error: BaseException | None = None
        self._fatal: BaseException | None = None
        self._shared = Shared()
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._reader: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._last_progress = 0.0

    # ------------------------------------------------------------------ public API

    @property
    def sample_rate(self) -> int:
        """The rate of the audio the voice produces, in Hz.

        Raises:
            LifecycleError: the host has not been started.
        """
        with self._cond:
            if "sample_rate" not in self._info:
                raise LifecycleError("the sample rate is known once the host has started")
            return int(self._info["sample_rate"])

    @property
    def running(self) -> bool:
        """True between a successful ``start()`` and ``close()`` (or a fatal failure)."""
        with self._cond:
            return self._state is _State.RUNNING

    @property
    def pid(self) -> int | None:
        """The process id of the current program, or None when none is running."""
        with self._cond:
            child = self._child
            if child is None or child.proc.returncode is not None:
                return None
            return child.proc.pid

    @property
    def restarts(self) -> int:
        """How many times a dead program was replaced by one that became ready."""
        with self._cond:
            return self._restarts

    @property
    def info(self) -> dict[str, Any]:
        """What the program reported when ready: engine, voice, sample_rate, load_seconds."""
        with self._cond:
            return dict(self._info)

    def __enter__(self) -> SpeechEngineHost:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> SpeechEngineHost:
        """Start the program and block until its voice is loaded; return self.

        Raises:
            LifecycleError: start() was already called.
            EngineError: the voice failed to load (``error_type`` keeps the original name).
            WorkerStartTimeout: not ready within ``start_timeout_s``.
            WorkerCrashed: the program exited before it was ready.
            WorkerError: the interpreter could not be started.
        """
        with self._cond:
            if self._state is not _State.CREATED:
                raise LifecycleError(f"SpeechEngineHost.start() called while "
                                     f"{self._state.value}; a host starts once")
            self._state = _State.STARTING
            self._finalizer = weakref.finalize(self, abandon, self._shared)
            try:
                self._spawn()
            except WorkerError:
                self._state = _State.FAILED
                raise
            self._reader = threading.Thread(target=self._read_loop,
                                            name="harken-speak-engine-reader", daemon=True)
            self._reader.start()
            self._watchdog = threading.Thread(target=self._watch_loop,
                                              name="harken-speak-engine-watchdog", daemon=True)
            self._watchdog.start()
            ready = self._cond.wait_for(lambda: self._state is not _State.STARTING
                                        or self._start_error is not None,
                                        timeout=self._start_timeout_s)
            if self._state is _State.RUNNING:
                return self
            error = self._start_error or WorkerStartTimeout(
                f"the speech engine program did not load its voice within "
                f"{self._start_timeout_s} s")
            if not ready and self._child is not None:
                self._child.kill_reason = "it did not become ready in time"
        self.close(timeout=1.0)
        raise error

    def submit(self, text: str, listener: SynthesisListener, *, speed: float = 1.0) -> int:
        """Queue one sentence; return its request id. Never waits for synthesis.

        Raises:
            LifecycleError: not started, or closed.
            WorkerError: the program failed for good (the error also went to the listeners).
        """
        with self._cond:
            if self._fatal is not None:
                raise self._fatal
            if self._state is not _State.RUNNING:
                raise LifecycleError(f"SpeechEngineHost.submit() called while "
                                     f"{self._state.value}; call start() first")
            if not self._requests:
                self._last_progress = time.monotonic()  # the silence clock starts now
            self._next_id += 1
            request_id = self._next_id
            self._requests[request_id] = _Request(text, float(speed), listener)
            self._send_request(request_id)
            return request_id

    def cancel(self, request_id: int) -> None:
        """Forget a request: no listener call is made for it afterwards. Never blocks long.

        A queued sentence is dropped by the program; the one being synthesised stops after
        its current chunk. Unknown ids, and calls before start or after close, are ignored.
        """
        with self._cond:
            if self._requests.pop(request_id, None) is None:
                return
            self._send("cancel", {"id": request_id})

    def close(self, timeout: float = 2.0) -> None:
        """Stop the program and the reader; idempotent, bounded by about ``timeout`` s.

        Requests still pending get ``on_failed`` with a :class:`LifecycleError`.
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
            child = self._child
            self._send("shutdown", {})
            pending = list(self._requests.items())
            self._requests.clear()
            self._cond.notify_all()
        if child is not None:
            stop_child(child, started + timeout / 2, deadline)
        for thread in (self._reader, self._watchdog):
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.05, deadline - time.monotonic()))
                if thread.is_alive():
                    logger.warning("%s did not stop within the close timeout", thread.name)
        for proc in self._shared.procs:
            close_pipes(proc)
        with self._cond:
            self._state = _State.CLOSED
            self._cond.notify_all()
        if self._finalizer is not None:
            self._finalizer.detach()
        closed = LifecycleError("the speech engine host was closed")
        for request_id, request in pending:
            _call(request.listener.on_failed, request_id, closed)

    # ------------------------------------------------------------------ the program

    def _send(self, type: str, header: dict[str, Any]) -> None:
        """Write one message to the current program (lock held); a dead pipe is ignored:
        the reader notices the exit and restarts the program.
        """
        child = self._child
        if child is None or child.proc.stdin is None:
            return
        try:
            write_message(child.proc.stdin, type, header)
        except (OSError, ValueError):
            pass

    def _send_request(self, request_id: int) -> None:
        request = self._requests[request_id]
        self._send("synthesize", {"id": request_id, "text": request.text,
                                  "options": {"speed": request.speed}})

    def _spawn(self) -> None:
        """Start a program and send it "init" (lock held)."""
        proc = launch(self._python, _PROGRAM)
        self._shared.procs.append(proc)
        self._gen += 1
        self._child = Child(proc, self._gen, time.monotonic())
        logger.debug("started speech engine program %d (generation %d)", proc.pid, self._gen)
        self._send("init", {"engine": self.spec.to_dict(),
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
        kind = message.type
        with self._cond:
            self._last_progress = time.monotonic()
        if kind == "log":
            relay_log(header)
        elif kind == "ready":
            with self._cond:
                child.ready = True
                self._info = dict(header["info"])
                if self._state is _State.STARTING:
                    self._state = _State.RUNNING
                elif child.gen > 1:
                    self._restarts += 1
                self._cond.notify_all()
        elif kind == "failed" and header["id"] is None:
            child.init_error = EngineError(str(header["message"]), str(header["error_type"]))
            logger.debug("speech engine failed to load:\n%s", header.get("traceback", ""))
        elif kind in ("audio", "done", "failed"):
            request_id = int(header["id"])
            with self._cond:
                if kind == "audio":
                    request = self._requests.get(request_id)
                else:
                    request = self._requests.pop(request_id, None)
                    self._crashes = 0
            if request is None:
                return  # cancelled
            if kind == "audio":
                _call(request.listener.on_audio, request_id, decode_audio(message.payload))
            elif kind == "done":
                _call(request.listener.on_done, request_id, int(header["samples"]))
            else:
                logger.debug("sentence %d failed:\n%s", request_id, header.get("traceback", ""))
                _call(request.listener.on_failed, request_id,
                      EngineError(str(header["message"]), str(header["error_type"])))
        elif kind not in ("pong", "shutdown_ack"):
            logger.warning("unexpected %r message from the speech engine program", kind)

    def _watch_loop(self) -> None:
        """Kill a program that holds sentences and has said nothing for too long."""
        with self._cond:
            while self._state in (_State.STARTING, _State.RUNNING):
                self._cond.wait(0.1)
                child = self._child
                if child is None or child.kill_reason is not None \
                        or child.proc.returncode is not None:
                    continue
                now = time.monotonic()
                if not child.ready:
                    if self._state is _State.RUNNING \
                            and now - child.started_at > self._start_timeout_s:
                        child.kill_reason = (f"it did not load the voice within "
                                             f"{self._start_timeout_s} s")
                elif self._requests and now - self._last_progress > self._request_timeout_s:
                    child.kill_reason = (f"it sent nothing for {now - self._last_progress:.1f}"
                                         f" s while holding {len(self._requests)} sentence(s)")
                if child.kill_reason is not None:
                    logger.warning("killing speech engine program %d: %s", child.proc.pid,
                                   child.kill_reason)
                    try:
                        child.proc.kill()
                    except OSError:  # pragma: no cover - already gone
                        pass

    def _child_gone(self, child: Child, problem: BaseException | None) -> bool:
        """Handle the end of a program; return True to read from its replacement."""
        how = reap(child, problem)
        given_up: list[tuple[int, _Request, BaseException]] = []
        restarted: list[tuple[int, _Request]] = []
        fatal: BaseException | None = None
        with self._cond:
            if self._state in (_State.CLOSING, _State.CLOSED) or self._shared.abandoned:
                return False
            if self._state is _State.STARTING:
                self._start_error = not_ready_error(child, how, self._start_timeout_s)
                self._cond.notify_all()
                return False
            self._crashes += 1
            crash = WorkerCrashed(f"the speech engine program {child.proc.pid} stopped ({how})")
            logger.warning("%s; restarting it", crash)
            if not child.ready:
                fatal = not_ready_error(child, how, self._start_timeout_s)
            elif self._crashes > self._max_attempts:
                fatal = WorkerCrashed(f"the speech engine program crashed {self._crashes} "
                                      f"times in a row; giving up (last: {how})")
            if fatal is None and self._requests:
                head_id = next(iter(self._requests))
                head = self._requests[head_id]
                head.attempts += 1
                if head.attempts > self._max_attempts:
                    del self._requests[head_id]
                    given_up.append((head_id, head, WorkerCrashed(
                        f"the speech engine program died {self._max_attempts} times while "
                        f"synthesising this sentence (last: {how})")))
            if fatal is None:
                try:
                    self._spawn()
                except WorkerError as exc:
                    fatal = exc
            if fatal is not None:
                self._state = _State.FAILED
                self._fatal = fatal
                given_up += [(i, r, fatal) for i, r in self._requests.items()]
                self._requests.clear()
            else:
                restarted = list(self._requests.items())
                for request_id, _ in restarted:
                    self._send_request(request_id)
            self._cond.notify_all()
        for request_id, request in restarted:
            _call(request.listener.on_restart, request_id)
        for request_id, request, error in given_up:
            _call(request.listener.on_failed, request_id, error)
        return fatal is None


def _call(method: Any, *args: Any) -> None:
    try:
        method(*args)
    except Exception:
        logger.exception("a synthesis listener raised")
