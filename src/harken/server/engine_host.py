"""EngineHost: one engine process shared by every server session, with fair scheduling.

Each session's :class:`~harken.core.pipeline.SpeechPipeline` numbers its requests from 1,
so the host gives every request it sends to the :class:`~harken.worker.process.EngineProcess`
a global id (``dataclasses.replace``) and maps the answer back to the session and the
session's own request.

Scheduling. Requests wait here, in one bounded queue per session, and only
``max_in_engine`` of them are in the engine process at once (one being transcribed and one
ready behind it keeps the child busy without taking requests away from the scheduler). Each
time a slot frees, the host picks the next request round-robin over sessions, finals before
partials: a session with many queued finals gets one slot per turn, so it cannot starve the
others, and partials (which only make text appear earlier) go out only when the engine
process is idle, so a final never waits behind more than the one partial being transcribed.
A session holds at most one queued partial: a newer one replaces it (coalescing). One partial
at a time also matters because the engine process replaces a partial waiting behind another
one without answering it.

Load shedding: when ``fast_finals_at`` or more other finals are waiting or being
transcribed (all sessions together) as a final goes out, it is sent with the decode quality
:data:`CHEAP_FINAL`: for faster-whisper, the fast pass in the partials' 10 s window with
greedy decoding (about 0.75 of the default final pass, itself the fast pass with beam 5 in a
15 s window), so that latency stays bounded when many people finish speaking at once. Answers
say nothing about it; the ``fast_finals`` counter does.

Restarts: the engine process restarts a crashed child itself; when it gives up (several
crashes in a row, or a child that dies while loading) the host starts a fresh engine process
after a back-off (1 s, 2 s, 4 s...), up to ``max_restarts`` times in a row (an answered
request resets the count). Meanwhile new sessions and requests get
:class:`EngineUnavailable`; when the last restart fails, :meth:`wait_gave_up` returns and
the server drains and stops (``harken serve`` then exits non-zero, so a supervisor
restarts it) instead of staying up without an engine.

Admission control: :meth:`open_session` raises :class:`ServerBusy` beyond ``max_sessions``,
and :meth:`submit` raises it when a session has ``max_queued`` finals waiting (the engine
cannot keep up with it), so no queue here grows without bound.

Threads: every method here runs on the asyncio event loop that called :meth:`start`. The
engine process's answers arrive on its reader thread ("harken-engine-reader") and hop to the
loop with ``loop.call_soon_threadsafe``; the host then calls the session's callbacks on the
loop, so sessions can touch their (not thread-safe) pipelines.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import EngineConfig
from ..engine.base import EngineOutput, Quality, TranscribeRequest
from ..errors import ConfigError, EngineUnavailable, HarkenError, LifecycleError, ServerBusy
from .metrics import Histogram

__all__ = ["CHEAP_FINAL", "EngineHost", "EngineLike", "EngineUnavailable", "HostSession",
           "ServerBusy"]

logger = logging.getLogger(__name__)

CHEAP_FINAL: Quality = "cheap"
"""The decode quality of a final sent while others wait (see "Load shedding")."""

ResultCallback = Callable[[TranscribeRequest, EngineOutput, float, int], None]
FailedCallback = Callable[[TranscribeRequest, BaseException], None]
ErrorCallback = Callable[[BaseException, bool], None]


class EngineLike(Protocol):
    """What the host needs from an engine runner (an EngineProcess, or a fake in tests)."""

    def start(self) -> None: ...  # noqa: D102

    def submit(self, request: TranscribeRequest) -> None: ...  # noqa: D102

    def cancel(self, request_id: int) -> None: ...  # noqa: D102

    def close(self, timeout: float = 2.0) -> None: ...  # noqa: D102

    @property
    def restarts(self) -> int: ...  # noqa: D102

    @property
    def ready_info(self) -> dict[str, Any]: ...  # noqa: D102


EngineFactory = Callable[[ResultCallback, FailedCallback, ErrorCallback], EngineLike]


@dataclass(eq=False)
class HostSession:
    """One session's place in the host: its queue and its callbacks (loop-only state)."""

    session_id: int
    name: str
    on_result: ResultCallback
    on_failed: FailedCallback
    on_error: ErrorCallback
    finals: collections.deque[tuple[TranscribeRequest, float]] = field(
        default_factory=collections.deque)
    """Waiting finals with the time.monotonic() they were submitted at."""
    partial: tuple[TranscribeRequest, float] | None = None
    in_engine: set[int] = field(default_factory=set)
    """Global ids of this session's requests now in the engine process."""


@dataclass(eq=False)
class _Sent:
    session: HostSession
    request: TranscribeRequest
    """The session's own request (its own id)."""
    submitted_at: float
    """time.monotonic() when the session handed it to the host."""


class EngineHost:
    """Runs one engine process for many sessions and schedules their requests fairly.

    Args:
        config: the engine to run.
        max_sessions: sessions allowed at once; :meth:`open_session` raises beyond it.
        max_queued: finals one session may have waiting in the host.
        max_in_engine: requests in the engine process at once (>= 1).
        fast_finals_at: other finals waiting or in the engine (all sessions) at which a
            final is sent with :data:`CHEAP_FINAL`; None never does.
        start_timeout_s: seconds the engine may take to load.
        request_timeout_s: see :class:`~harken.worker.process.EngineProcess`.
        max_attempts: tries per request before it fails.
        max_restarts: fresh engine processes started in a row after the engine failed for
            good, before the host gives up (see "Restarts").
        restart_backoff_s: seconds before the first such restart; doubled for each next.
        engine_factory: builds the engine runner from ``(on_result, on_failed, on_error)``;
            defaults to an :class:`~harken.worker.process.EngineProcess` (tests pass fakes).

    Raises:
        ConfigError: a limit is not a positive int.
    """

    def __init__(self, config: EngineConfig, *, max_sessions: int = 16, max_queued: int = 16,
                 max_in_engine: int = 2, fast_finals_at: int | None = 1,
                 start_timeout_s: float = 120.0,
                 request_timeout_s: float = 60.0, max_attempts: int = 3,
                 max_restarts: int = 3, restart_backoff_s: float = 1.0,
                 engine_factory: EngineFactory | None = None) -> None:
        if not isinstance(config, EngineConfig):
            raise ConfigError(f"config must be an EngineConfig, got {type(config).__name__}")
        for name, value in (("max_sessions", max_sessions), ("max_queued", max_queued),
                            ("max_in_engine", max_in_engine)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if fast_finals_at is not None and (isinstance(fast_finals_at, bool) or not isinstance(
                fast_finals_at, int) or fast_finals_at < 1):
            raise ConfigError(f"fast_finals_at must be an int >= 1 or None, "
                              f"got {fast_finals_at!r}")
        self._config = config
        self._fast_finals_at = fast_finals_at
        self.fast_finals = 0
        """Finals sent with the fast pass because others were waiting."""
        self.max_sessions = max_sessions
        self._max_queued = max_queued
        self._max_in_engine = max_in_engine
        self._start_timeout_s = start_timeout_s
        self._request_timeout_s = request_timeout_s
        self._max_attempts = max_attempts
        self._max_restarts = max_restarts
        self._restart_backoff_s = restart_backoff_s
        self._failures = 0  # engine processes lost in a row
        self._host_restarts = 0
        self._recovery: asyncio.Task[None] | None = None
        self._gave_up: asyncio.Event | None = None
        self._factory = engine_factory
        self._engine: EngineLike | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: dict[int, HostSession] = {}
        self._order: collections.deque[int] = collections.deque()  # round-robin turn
        self._sent: dict[int, _Sent] = {}  # global id -> where it came from
        self._next_session = 1
        self._next_global = 1
        self._closed = False
        self.fatal: BaseException | None = None
        """The error that stopped the engine for good, if one did."""
        self.latency = {"final": Histogram(), "partial": Histogram()}
        """Seconds from submit() to the answer, per request kind (queue wait included)."""
        self.answered = {"final": 0, "partial": 0}
        self.failed = 0
        self.rejected = 0
        """Sessions refused and finals refused because the host was full."""
        self.compute_seconds = 0.0
        """Engine time spent on answered requests, in seconds."""
        self.audio_seconds = 0.0
        """Audio in answered requests, in seconds."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the engine process (the model loads on a worker thread; the loop runs on).

        Raises:
            LifecycleError: started twice.
            WorkerError: the engine did not load (see EngineProcess.start).
        """
        if self._engine is not None or self._closed:
            raise LifecycleError("EngineHost.start() called twice; create a new host")
        self._loop = asyncio.get_running_loop()
        self._gave_up = asyncio.Event()
        self._engine = self._make_engine()
        try:
            await asyncio.to_thread(self._engine.start)
        except BaseException:
            engine, self._engine = self._engine, None
            await asyncio.to_thread(engine.close, 1.0)
            raise

    def _make_engine(self) -> EngineLike:
        if self._factory is not None:
            return self._factory(self._from_engine_result, self._from_engine_failed,
                                 self._from_engine_error)
        from ..worker.process import EngineProcess

        return EngineProcess(self._config, on_result=self._from_engine_result,
                             on_failed=self._from_engine_failed,
                             on_error=self._from_engine_error,
                             start_timeout_s=self._start_timeout_s,
                             request_timeout_s=self._request_timeout_s,
                             max_attempts=self._max_attempts)

    async def close(self, timeout: float = 2.0) -> None:
        """Stop the engine process; idempotent. Pending requests are dropped silently."""
        if self._closed:
            return
        self._closed = True
        recovery = self._recovery
        if recovery is not None and not recovery.done():
            recovery.cancel()
            await asyncio.gather(recovery, return_exceptions=True)
        for session in list(self._sessions.values()):
            self.close_session(session)
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.close, timeout)

    # ------------------------------------------------------------------ sessions

    @property
    def sessions(self) -> int:
        """Sessions open now."""
        return len(self._sessions)

    @property
    def queued(self) -> int:
        """Requests waiting in the host (not yet in the engine process)."""
        return sum(len(s.finals) + (s.partial is not None) for s in self._sessions.values())

    @property
    def in_engine(self) -> int:
        """Requests in the engine process now."""
        return len(self._sent)

    @property
    def restarts(self) -> int:
        """Engine process restarts after crashes or hangs (fresh processes included)."""
        return self._host_restarts + (self._engine.restarts if self._engine is not None
                                      else 0)

    async def wait_gave_up(self) -> BaseException:
        """Return (the last error) once the host gave up restarting the engine."""
        if self._gave_up is None:
            raise LifecycleError("the engine host is not started")
        await self._gave_up.wait()
        assert self.fatal is not None
        return self.fatal

    def _unavailable(self) -> EngineUnavailable:
        return EngineUnavailable(f"the speech engine failed ({self.fatal}) and is being "
                                 "restarted; try again in a few seconds")

    @property
    def ready_info(self) -> dict[str, Any]:
        """What the engine reported when it became ready (engine, model, load time)."""
        return self._engine.ready_info if self._engine is not None else {}

    def open_session(self, name: str, on_result: ResultCallback, on_failed: FailedCallback,
                     on_error: ErrorCallback) -> HostSession:
        """Register a session; its callbacks run on the loop.

        Raises:
            ServerBusy: ``max_sessions`` sessions are open.
            LifecycleError: the host is not running.
            WorkerError: the engine process failed for good.
        """
        if self._engine is None or self._closed:
            raise LifecycleError("the engine host is not running")
        if self.fatal is not None:
            raise self._unavailable()
        if len(self._sessions) >= self.max_sessions:
            self.rejected += 1
            raise ServerBusy(f"the server is busy: all {self.max_sessions} sessions are in use; "
                             "try again later")
        session = HostSession(self._next_session, name, on_result, on_failed, on_error)
        self._next_session += 1
        self._sessions[session.session_id] = session
        self._order.append(session.session_id)
        return session

    def close_session(self, session: HostSession) -> None:
        """Forget a session: drop its queue and withdraw its requests from the engine."""
        if self._sessions.pop(session.session_id, None) is None:
            return
        try:
            self._order.remove(session.session_id)
        except ValueError:  # pragma: no cover - always in the order
            pass
        session.finals.clear()
        session.partial = None
        for gid in list(session.in_engine):
            self._withdraw(gid)
        self._pump()

    def submit(self, session: HostSession, request: TranscribeRequest) -> None:
        """Queue a session's request (its own id); the answer comes to its callbacks.

        Raises:
            ServerBusy: the session already has ``max_queued`` finals waiting.
            LifecycleError: the session is closed.
        """
        if session.session_id not in self._sessions:
            raise LifecycleError(f"session {session.name} is closed")
        if self.fatal is not None:
            raise self._unavailable()
        if request.kind == "partial":
            session.partial = (request, time.monotonic())  # replaces a waiting partial
        else:
            if len(session.finals) >= self._max_queued:
                self.rejected += 1
                raise ServerBusy(f"the server is busy: {len(session.finals)} utterances of this "
                                 "session are waiting for the engine")
            session.finals.append((request, time.monotonic()))
        self._pump()

    def cancel(self, session: HostSession, request_id: int) -> None:
        """Withdraw a session's request (its own id); no callback comes for it."""
        if session.partial is not None and session.partial[0].request_id == request_id:
            session.partial = None
            return
        for queued in session.finals:
            if queued[0].request_id == request_id:
                session.finals.remove(queued)
                return
        for gid in list(session.in_engine):
            if self._sent[gid].request.request_id == request_id:
                self._withdraw(gid)
                self._pump()
                return

    # ------------------------------------------------------------------ scheduling

    def _withdraw(self, gid: int) -> None:
        sent = self._sent.pop(gid, None)
        if sent is None:
            return
        sent.session.in_engine.discard(gid)
        if self._engine is not None:
            self._engine.cancel(gid)

    def _waiting_finals(self) -> int:
        return sum(len(s.finals) for s in self._sessions.values())

    def _finals_in_engine(self) -> int:
        return sum(1 for sent in self._sent.values() if sent.request.kind == "final")

    def _pick(self) -> tuple[HostSession, TranscribeRequest, float] | None:
        """Take the next request to send: round-robin over sessions, finals first.

        The session served moves to the back of the turn order, whatever kind it sent.
        """
        for i, sid in enumerate(self._order):
            session = self._sessions[sid]
            if session.finals:
                self._order.rotate(-(i + 1))
                request, submitted_at = session.finals.popleft()
                return session, request, submitted_at
        if self._sent:
            # Partials only go to an idle engine: a final arriving next then waits for at
            # most one running partial, never for partials queued in the child before it.
            return None
        for i, sid in enumerate(self._order):
            session = self._sessions[sid]
            if session.partial is not None:
                self._order.rotate(-(i + 1))
                (request, submitted_at), session.partial = session.partial, None
                return session, request, submitted_at
        return None

    def _pump(self) -> None:
        engine = self._engine
        if engine is None or self.fatal is not None:
            return
        while len(self._sent) < self._max_in_engine:
            picked = self._pick()
            if picked is None:
                return
            session, request, submitted_at = picked
            if request.kind == "final" and self._fast_finals_at is not None and \
                    self._waiting_finals() + self._finals_in_engine() >= self._fast_finals_at:
                request = dataclasses.replace(
                    request, hints=dataclasses.replace(request.hints, quality=CHEAP_FINAL))
                self.fast_finals += 1
            gid = self._next_global
            self._next_global += 1
            self._sent[gid] = _Sent(session, request, submitted_at)
            session.in_engine.add(gid)
            try:
                engine.submit(dataclasses.replace(request, request_id=gid))
            except HarkenError as exc:
                self._sent.pop(gid, None)
                session.in_engine.discard(gid)
                logger.warning("engine refused a request: %s", exc)
                session.on_failed(request, exc)

    # ------------------------------------------------------------------ engine callbacks

    def _hop(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop (called on the engine's reader thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _from_engine_result(self, request: TranscribeRequest, output: EngineOutput,
                            compute_seconds: float, attempts: int) -> None:
        self._hop(self._answered, request.request_id, output, compute_seconds, attempts)

    def _from_engine_failed(self, request: TranscribeRequest, exc: BaseException) -> None:
        self._hop(self._failed, request.request_id, exc)

    def _from_engine_error(self, exc: BaseException, fatal: bool) -> None:
        self._hop(self._error, exc, fatal)

    def _answered(self, gid: int, output: EngineOutput, compute_seconds: float,
                  attempts: int) -> None:
        sent = self._sent.pop(gid, None)
        if sent is None:
            return  # withdrawn
        sent.session.in_engine.discard(gid)
        self._failures = 0
        kind = sent.request.kind
        self.answered[kind] += 1
        self.latency[kind].observe(time.monotonic() - sent.submitted_at)
        self.compute_seconds += compute_seconds
        self.audio_seconds += sent.request.duration
        self._pump()
        try:
            sent.session.on_result(sent.request, output, compute_seconds, attempts)
        except Exception:
            logger.exception("session %s failed to handle a result", sent.session.name)

    def _failed(self, gid: int, exc: BaseException) -> None:
        sent = self._sent.pop(gid, None)
        if sent is None:
            return
        sent.session.in_engine.discard(gid)
        self.failed += 1
        self._pump()
        try:
            sent.session.on_failed(sent.request, exc)
        except Exception:
            logger.exception("session %s failed to handle a failure", sent.session.name)

    def _error(self, exc: BaseException, fatal: bool) -> None:
        if fatal:
            self.fatal = exc
            logger.error("the engine process failed for good: %s", exc)
            self._sent.clear()
            if not self._closed and (self._recovery is None or self._recovery.done()):
                self._recovery = asyncio.ensure_future(self._recover())
        for session in list(self._sessions.values()):
            if fatal:
                session.in_engine.clear()
            try:
                session.on_error(exc, fatal)
            except Exception:
                logger.exception("session %s failed to handle an engine error", session.name)

    # ------------------------------------------------------------------ restarts

    async def _recover(self) -> None:
        """Start fresh engine processes with back-off until one runs, or give up."""
        while not self._closed:
            if self._failures >= self._max_restarts:
                logger.error("the engine failed %d times in a row; giving up: %s",
                             self._failures + 1, self.fatal)
                assert self._gave_up is not None
                self._gave_up.set()
                return
            delay = self._restart_backoff_s * 2 ** self._failures
            self._failures += 1
            logger.warning("restarting the engine in %.0f s (attempt %d of %d)", delay,
                           self._failures, self._max_restarts)
            await asyncio.sleep(delay)
            old, engine = self._engine, self._make_engine()
            if old is not None:
                await asyncio.to_thread(old.close, 1.0)
            try:
                await asyncio.to_thread(engine.start)
            except Exception as exc:
                await asyncio.to_thread(engine.close, 1.0)
                self.fatal = exc
                logger.error("the restarted engine failed: %s", exc)
                continue
            self._engine = engine
            self._host_restarts += 1
            self.fatal = None
            logger.warning("the engine is running again")
            self._pump()
            return
