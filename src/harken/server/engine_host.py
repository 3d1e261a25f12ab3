"""EngineHost: a pool of engine processes shared by every server session, fairly scheduled.

Each session's :class:`~harken.core.pipeline.SpeechPipeline` numbers its requests from 1,
so the host gives every request it sends to the :class:`~harken.worker.process.EngineProcess`
a global id (``dataclasses.replace``) and maps the answer back to the session and the
session's own request.

Scheduling. Requests wait here, in one bounded queue per session, and only
``max_in_engine`` of them are in each engine process at once (one being transcribed and one
ready behind it keeps the child busy without taking requests away from the scheduler). Each
time a slot frees, the host picks the next request round-robin over sessions, finals before
partials: a session with many queued finals gets one slot per turn, so it cannot starve the
others, and partials (which only make text appear earlier) go out only when the engine
process is idle, so a final never waits behind more than the one partial being transcribed.
With ``engines`` > 1 each request goes to the least busy engine with a free slot (a partial:
an idle one); among equally busy ones, to the session's previous engine (sticky, for
whatever a child may keep per session; faster-whisper keeps nothing between calls today, so
it only breaks ties), so stickiness never queues a request behind another while an engine
idles.
Early finals (:meth:`submit` with ``early=True``: cut at the first silence, stale if speech
resumes within the utterance's end silence, which on the telephone test clips happened about
once per utterance) wait behind the finals that will stand while others wait: under load one
goes out only to an idle engine when no such final waits, or once :meth:`confirm` says it
stands. An early final that speech made stale is then mostly withdrawn from the queue before
the engine pays for it; on an idle engine it goes out at once, keeping its head start.
A session holds at most one queued partial: a newer one replaces it (coalescing). One partial
at a time also matters because the engine process replaces a partial waiting behind another
one without answering it.

Load shedding: when ``fast_finals_at`` or more other finals are waiting or being
transcribed (all sessions together, less one per other live engine, since those run beside
it) as a final goes out, it is sent with the decode quality
:data:`CHEAP_FINAL`: for faster-whisper, the fast pass with greedy decoding in a window of
the audio plus 1 s, 10 s at least (the default final pass: beam 5 in a 12 s window at
least), so that latency stays bounded when many people finish speaking at once. Answers
say nothing about it; the ``fast_finals`` counter does. An engine whose ready info gives a
``max_batch`` above 1 (faster-whisper: ``batch_cheap_finals``) then takes that many more
requests than ``max_in_engine``, and decodes the cheap finals that wait together in one
batch (off by default; see ``WhisperOptions.batch_cheap_finals``).

Restarts, per engine (:class:`~harken.server.engine_pool.EngineSlot`): with other engines
running, the requests a crashed engine held move to them at once (a request moved more than
``max_attempts`` times fails, so one poisonous utterance cannot crash every engine forever),
and the crashed one gets no new work for ``restart_backoff_s`` while its child restarts.
Alone, the engine process restarts a crashed child itself and sends its requests again. When
an engine process gives up (several
crashes in a row, or a child that dies while loading) the host starts a fresh engine process
after a back-off (1 s, 2 s, 4 s...), up to ``max_restarts`` times in a row (an answered
request resets the count). While no engine runs, new sessions and requests get
:class:`EngineUnavailable`; when the last restart of the last engine fails,
:meth:`wait_gave_up` returns and
the server drains and stops (``harken serve`` then exits non-zero, so a supervisor
restarts it) instead of staying up without an engine.

Admission control: :meth:`open_session` raises :class:`ServerBusy` beyond ``max_sessions``,
and :meth:`submit` raises it when a session has ``max_queued`` finals waiting (the engine
cannot keep up with it), so no queue here grows without bound.

One module, though long: scheduling, moving work off a crashed engine and restarting engines
all read and change the same queues and in-flight map on one loop; the per-engine state and
the pool's default size are in :mod:`harken.server.engine_pool`.

Threads: every method here runs on the asyncio event loop that called :meth:`start`. The
engine process's answers arrive on its reader thread ("harken-engine-reader") and hop to the
loop with ``loop.call_soon_threadsafe``; the host then calls the session's callbacks on the
loop, so sessions can touch their (not thread-safe) pipelines.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import EngineConfig
from ..engine.base import EngineOutput, Quality, TranscribeRequest
from ..errors import (
    ConfigError,
    EngineError,
    EngineUnavailable,
    HarkenError,
    LifecycleError,
    ServerBusy,
    WorkerError,
)
from .engine_pool import EngineLike, EngineSlot
from .metrics import Histogram

__all__ = ["CHEAP_FINAL", "EngineHost", "EngineLike", "EngineUnavailable", "HostSession",
           "ServerBusy"]

logger = logging.getLogger(__name__)

CHEAP_FINAL: Quality = "cheap"
"""The decode quality of a final sent while others wait (see "Load shedding")."""

ResultCallback = Callable[[TranscribeRequest, EngineOutput, float, int], None]
FailedCallback = Callable[[TranscribeRequest, BaseException], None]
ErrorCallback = Callable[[BaseException, bool], None]


EngineFactory = Callable[[ResultCallback, FailedCallback, ErrorCallback], EngineLike]


@dataclass(eq=False)
class HostSession:
    """One session's place in the host: its queue and its callbacks (loop-only state)."""

    session_id: int
    name: str
    on_result: ResultCallback
    on_failed: FailedCallback
    on_error: ErrorCallback
    finals: collections.deque[_Queued] = field(default_factory=collections.deque)
    """Waiting finals, oldest first."""
    partial: _Queued | None = None
    in_engine: set[int] = field(default_factory=set)
    """Global ids of this session's requests now in an engine process."""
    last_engine: int | None = None
    """The engine that took this session's last request (for stickiness)."""


@dataclass(eq=False)
class _Queued:
    request: TranscribeRequest
    """The session's own request (its own id)."""
    submitted_at: float
    """time.monotonic() when the session handed it to the host."""
    moves: int = 0
    """Times it was taken from a crashed engine and sent again."""
    early: bool = False
    """An early final not yet confirmed (see "Early finals")."""


@dataclass(eq=False)
class _Sent:
    session: HostSession
    queued: _Queued
    """What was sent (the session's own request, possibly as a cheap final)."""
    slot: EngineSlot


class EngineHost:
    """Runs a pool of engine processes for many sessions and schedules their requests fairly.

    Args:
        config: the engine to run.
        engines: engine processes (>= 1); see :func:`~harken.server.engine_pool.pool_size`
            for a default from the cores.
        max_sessions: sessions allowed at once; :meth:`open_session` raises beyond it.
        max_queued: finals one session may have waiting in the host.
        max_in_engine: requests in each engine process at once (>= 1).
        fast_finals_at: other finals waiting or in the engines (all sessions, less one per
            other live engine) at which a final is sent with :data:`CHEAP_FINAL`; None never
            does.
        start_timeout_s: seconds an engine may take to load.
        request_timeout_s: see :class:`~harken.worker.process.EngineProcess`.
        max_attempts: tries per request before it fails (also: moves between engines).
        max_restarts: fresh engine processes started in a row (per engine) after an engine
            failed for good, before the host gives up on it (see "Restarts").
        restart_backoff_s: seconds before the first such restart; doubled for each next.
            Also how long a crashed engine gets no new work while others run.
        engine_factory: builds an engine runner from ``(on_result, on_failed, on_error)``;
            defaults to an :class:`~harken.worker.process.EngineProcess` (tests pass fakes).

    Raises:
        ConfigError: a limit is not a positive int.
    """

    def __init__(self, config: EngineConfig, *, engines: int = 1, max_sessions: int = 16,
                 max_queued: int = 16, max_in_engine: int = 2, fast_finals_at: int | None = 1,
                 start_timeout_s: float = 120.0,
                 request_timeout_s: float = 60.0, max_attempts: int = 3,
                 max_restarts: int = 3, restart_backoff_s: float = 1.0,
                 engine_factory: EngineFactory | None = None) -> None:
        if not isinstance(config, EngineConfig):
            raise ConfigError(f"config must be an EngineConfig, got {type(config).__name__}")
        for name, value in (("engines", engines), ("max_sessions", max_sessions),
                            ("max_queued", max_queued), ("max_in_engine", max_in_engine)):
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
        self._slots = [EngineSlot(i) for i in range(engines)]
        self._started = False
        self._gave_up: asyncio.Event | None = None
        self._last_fatal: BaseException | None = None
        self._factory = engine_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sessions: dict[int, HostSession] = {}
        self._order: collections.deque[int] = collections.deque()  # round-robin turn
        self._sent: dict[int, _Sent] = {}  # global id -> where it came from
        self._next_session = 1
        self._next_global = 1
        self._closed = False
        self.latency = {"final": Histogram(), "partial": Histogram()}
        """Seconds from submit() to the answer, per request kind (queue wait included)."""
        self.answered = {"final": 0, "partial": 0}
        self.failed = 0
        self.moved = 0
        """Requests taken from a crashed engine and sent to another."""
        self.rejected = 0
        """Sessions refused and finals refused because the host was full."""
        self.cancelled = {"waiting": 0, "running": 0}
        """Requests their session withdrew (stale early finals) while waiting here, and while
        in an engine (the engine stops it after its encoder, or before it starts)."""
        self.partials_replaced = 0
        """Waiting partials replaced by the session's newer one before an engine took them."""
        self.compute_seconds = 0.0
        """Engine time spent on answered requests, in seconds."""
        self.audio_seconds = 0.0
        """Audio in answered requests, in seconds."""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the engine processes (models load on worker threads; the loop runs on).

        Raises:
            LifecycleError: started twice.
            WorkerError: an engine did not load (see EngineProcess.start).
        """
        if self._started or self._closed:
            raise LifecycleError("EngineHost.start() called twice; create a new host")
        self._started = True
        self._loop = asyncio.get_running_loop()
        self._gave_up = asyncio.Event()
        for slot in self._slots:
            slot.engine = self._make_engine(slot)
        results = await asyncio.gather(
            *(asyncio.to_thread(self._engine_of(slot).start) for slot in self._slots),
            return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self._close_engines(1.0)
            raise errors[0]

    @staticmethod
    def _engine_of(slot: EngineSlot) -> EngineLike:
        assert slot.engine is not None
        return slot.engine

    def _make_engine(self, slot: EngineSlot) -> EngineLike:
        on_error = functools.partial(self._from_engine_error, slot)
        if self._factory is not None:
            return self._factory(self._from_engine_result, self._from_engine_failed, on_error)
        from ..worker.process import EngineProcess

        return EngineProcess(self._config, on_result=self._from_engine_result,
                             on_failed=self._from_engine_failed, on_error=on_error,
                             start_timeout_s=self._start_timeout_s,
                             request_timeout_s=self._request_timeout_s,
                             max_attempts=self._max_attempts)

    async def _close_engines(self, timeout: float) -> None:
        engines = [slot.engine for slot in self._slots if slot.engine is not None]
        for slot in self._slots:
            slot.engine = None
        await asyncio.gather(*(asyncio.to_thread(e.close, timeout) for e in engines))

    async def close(self, timeout: float = 2.0) -> None:
        """Stop the engine processes; idempotent. Pending requests are dropped silently."""
        if self._closed:
            return
        self._closed = True
        recoveries = [s.recovery for s in self._slots
                      if s.recovery is not None and not s.recovery.done()]
        for task in recoveries:
            task.cancel()
        await asyncio.gather(*recoveries, return_exceptions=True)
        for session in list(self._sessions.values()):
            self.close_session(session)
        await self._close_engines(timeout)

    # ------------------------------------------------------------------ state

    @property
    def engines(self) -> list[dict[str, Any]]:
        """Each engine's state for /health and /metrics (see EngineSlot.describe)."""
        return [slot.describe() for slot in self._slots]

    @property
    def fatal(self) -> BaseException | None:
        """Why no engine runs (the last engine error), or None while at least one does."""
        if not self._started or any(slot.live for slot in self._slots):
            return None
        return self._last_fatal or next(
            (slot.fatal for slot in self._slots if slot.fatal is not None), None)

    @property
    def sessions(self) -> int:
        """Sessions open now."""
        return len(self._sessions)

    @property
    def queued(self) -> int:
        """Requests waiting in the host (not yet in an engine process)."""
        return sum(len(s.finals) + (s.partial is not None) for s in self._sessions.values())

    @property
    def in_engine(self) -> int:
        """Requests in the engine processes now."""
        return len(self._sent)

    @property
    def rtf(self) -> float:
        """Real-time factor so far: engine seconds per second of audio (0 before any)."""
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0

    @property
    def restarts(self) -> int:
        """Engine process restarts after crashes or hangs (fresh processes included)."""
        return sum(slot.restarts for slot in self._slots)

    async def wait_gave_up(self) -> BaseException:
        """Return (the last error) once the host gave up restarting every engine."""
        if self._gave_up is None:
            raise LifecycleError("the engine host is not started")
        await self._gave_up.wait()
        fatal = self.fatal
        assert fatal is not None
        return fatal

    def _unavailable(self) -> EngineUnavailable:
        return EngineUnavailable(f"the speech engine failed ({self.fatal}) and is being "
                                 "restarted; try again in a few seconds")

    @property
    def ready_info(self) -> dict[str, Any]:
        """What an engine reported when it became ready (engine, model, load time)."""
        for slot in self._slots:
            if slot.engine is not None:
                return slot.engine.ready_info
        return {}

    # ------------------------------------------------------------------ sessions

    def open_session(self, name: str, on_result: ResultCallback, on_failed: FailedCallback,
                     on_error: ErrorCallback) -> HostSession:
        """Register a session; its callbacks run on the loop.

        Raises:
            ServerBusy: ``max_sessions`` sessions are open.
            LifecycleError: the host is not running.
            EngineUnavailable: no engine runs now (they are being restarted).
        """
        if not self._started or self._closed:
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
        """Forget a session: drop its queue and withdraw its requests from the engines."""
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

    def submit(self, session: HostSession, request: TranscribeRequest, *,
               early: bool = False) -> None:
        """Queue a session's request (its own id); the answer comes to its callbacks.

        ``early``: a final that speech may still make stale (see "Early finals"); the
        session calls :meth:`confirm` once it stands, or :meth:`cancel`.

        Raises:
            ServerBusy: the session already has ``max_queued`` finals waiting.
            EngineUnavailable: no engine runs now.
            LifecycleError: the session is closed.
        """
        if session.session_id not in self._sessions:
            raise LifecycleError(f"session {session.name} is closed")
        if self.fatal is not None:
            raise self._unavailable()
        if request.kind == "partial":
            self.partials_replaced += session.partial is not None
            session.partial = _Queued(request, time.monotonic())  # replaces a waiting one
        else:
            if len(session.finals) >= self._max_queued:
                self.rejected += 1
                raise ServerBusy(f"the server is busy: {len(session.finals)} utterances of this "
                                 "session are waiting for the engine")
            session.finals.append(_Queued(request, time.monotonic(),
                                          early=early and request.kind == "final"))
        self._pump()

    def confirm(self, session: HostSession, request_id: int) -> None:
        """A session's early final (its own id) stands now: it queues like any final."""
        for queued in session.finals:
            if queued.request.request_id == request_id and queued.early:
                queued.early = False
                self._pump()
                return

    def cancel(self, session: HostSession, request_id: int) -> None:
        """Withdraw a session's request (its own id); no callback comes for it."""
        if session.partial is not None and session.partial.request.request_id == request_id:
            session.partial = None
            self.cancelled["waiting"] += 1
            return
        for queued in session.finals:
            if queued.request.request_id == request_id:
                session.finals.remove(queued)
                self.cancelled["waiting"] += 1
                return
        for gid in list(session.in_engine):
            if self._sent[gid].queued.request.request_id == request_id:
                self.cancelled["running"] += 1
                self._withdraw(gid)
                self._pump()
                return

    # ------------------------------------------------------------------ scheduling

    def _withdraw(self, gid: int) -> _Sent | None:
        sent = self._sent.pop(gid, None)
        if sent is None:
            return None
        sent.session.in_engine.discard(gid)
        sent.slot.sent.discard(gid)
        if sent.slot.engine is not None:
            sent.slot.engine.cancel(gid)
        return sent

    def _waiting_finals(self) -> int:
        return sum(len(s.finals) for s in self._sessions.values())

    def _finals_in_engine(self) -> int:
        return sum(1 for sent in self._sent.values() if sent.queued.request.kind == "final")

    def _pick(self, partials: bool, shedding: bool) -> tuple[HostSession, _Queued] | None:
        """Take the next request to send: round-robin over sessions, finals first.

        One pass over the turn order; the first session with the best kind of request wins:
        a standing final, then (only with ``partials``) an early final, then (also only with
        ``partials``) a partial. ``partials``: an engine is idle (a partial goes only to an
        idle one: a final arriving next then waits for at most one running partial, never
        for partials queued in the child before it). ``shedding``: early finals are not
        standing (see "Early finals"); otherwise every final is. The session served moves
        to the back of the turn order, whatever kind it sent.
        """
        best: tuple[int, int, HostSession, _Queued] | None = None
        for i, sid in enumerate(self._order):
            session = self._sessions[sid]
            rank, queued = self._best_of(session, partials, shedding)
            if queued is not None and (best is None or rank < best[0]):
                best = (rank, i, session, queued)
                if rank == 0:
                    break
        if best is None:
            return None
        _, i, session, queued = best
        self._order.rotate(-(i + 1))
        if queued is session.partial:
            session.partial = None
        else:
            session.finals.remove(queued)
        return session, queued

    @staticmethod
    def _best_of(session: HostSession, partials: bool,
                 shedding: bool) -> tuple[int, _Queued | None]:
        """A session's most urgent request that may go now, with its rank (0 first)."""
        standing = next((q for q in session.finals if not (shedding and q.early)), None)
        if standing is not None:
            return 0, standing
        if not partials:
            return 3, None
        if session.finals:
            return 1, session.finals[0]
        return 2, session.partial

    @staticmethod
    def _choose(session: HostSession, free: list[EngineSlot]) -> EngineSlot:
        """The least busy engine; among equals the session's previous one, else the first."""
        return min(free, key=lambda slot: (len(slot.sent), slot.index != session.last_engine,
                                           slot.index))

    def _shedding(self, taken: int) -> bool:
        """Whether a final sent now goes out cheap, ``taken`` finals having left the queues
        for it (see "Load shedding").
        """
        if self._fast_finals_at is None:
            return False
        beside = sum(1 for s in self._slots if s.live) - 1
        return self._waiting_finals() - taken + self._finals_in_engine() - beside >= \
            self._fast_finals_at

    @staticmethod
    def _batch(slot: EngineSlot) -> int:
        """Cheap finals the slot's engine decodes together (its ready info's max_batch)."""
        size = slot.engine.ready_info.get("max_batch", 1) if slot.engine is not None else 1
        return size if isinstance(size, int) and size > 1 else 1

    def _pump(self) -> None:
        if self._closed:
            return
        now = time.monotonic()
        while True:
            # While shedding, an engine that batches cheap finals takes up to its batch
            # size more, so that finals waiting together are decoded together.
            shedding = self._waiting_finals() > 0 and self._shedding(1)
            free = [slot for slot in self._slots if slot.ready(now) and len(slot.sent) <
                    self._max_in_engine + (self._batch(slot) - 1 if shedding else 0)]
            if not free:
                return
            idle = [slot for slot in free if not slot.sent]
            picked = self._pick(partials=bool(idle), shedding=shedding)
            if picked is None:
                return
            session, queued = picked
            request = queued.request
            slot = self._choose(session, free if request.kind == "final" else idle)
            if request.kind == "final" and self._shedding(0):
                request = dataclasses.replace(request, hints=dataclasses.replace(
                    request.hints, quality=CHEAP_FINAL))
                self.fast_finals += 1
            self._send(session, dataclasses.replace(queued, request=request), slot)

    def _send(self, session: HostSession, queued: _Queued, slot: EngineSlot) -> None:
        gid = self._next_global
        self._next_global += 1
        self._sent[gid] = _Sent(session, queued, slot)
        session.in_engine.add(gid)
        session.last_engine = slot.index
        slot.sent.add(gid)
        try:
            self._engine_of(slot).submit(dataclasses.replace(queued.request, request_id=gid))
        except HarkenError as exc:
            sent = self._sent.pop(gid)
            session.in_engine.discard(gid)
            slot.sent.discard(gid)
            logger.warning("engine %d refused a request: %s", slot.index, exc)
            if self._elsewhere(slot, exc):
                self._requeue(sent, exc)
            else:
                session.on_failed(queued.request, exc)

    def _requeue(self, sent: _Sent, exc: BaseException) -> None:
        """Put a request a crashed engine held back in its session's queue (front)."""
        session, queued = sent.session, sent.queued
        if session.session_id not in self._sessions:
            return
        if queued.moves >= self._max_attempts:
            self.failed += 1
            self._call(session.on_failed, session, queued.request, exc)
            return
        self.moved += 1
        moved = dataclasses.replace(queued, moves=queued.moves + 1)
        if queued.request.kind == "final":
            session.finals.appendleft(moved)
        elif session.partial is None:
            session.partial = moved

    def _others_live(self, slot: EngineSlot) -> bool:
        return any(other.live for other in self._slots if other is not slot)

    def _elsewhere(self, slot: EngineSlot, exc: BaseException) -> bool:
        """Whether a request ``slot`` failed with ``exc`` should go to another engine: the
        process failed (not the request) and another runs. ``slot`` then rests a while, so
        the next pump does not hand the request back to the failing process.
        """
        if not isinstance(exc, WorkerError) or isinstance(exc, EngineError) or \
                not self._others_live(slot):
            return False
        slot.cool_until = time.monotonic() + self._restart_backoff_s
        assert self._loop is not None
        self._loop.call_later(self._restart_backoff_s, self._pump)
        return True

    # ------------------------------------------------------------------ engine callbacks

    def _hop(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop (called on an engine's reader thread)."""
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

    def _from_engine_error(self, slot: EngineSlot, exc: BaseException, fatal: bool) -> None:
        self._hop(self._error, slot, exc, fatal)

    @staticmethod
    def _call(callback: Callable[..., None], session: HostSession, *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            logger.exception("session %s failed to handle an engine answer", session.name)

    def _answered(self, gid: int, output: EngineOutput, compute_seconds: float,
                  attempts: int) -> None:
        sent = self._sent.pop(gid, None)
        if sent is None:
            return  # withdrawn
        sent.session.in_engine.discard(gid)
        sent.slot.sent.discard(gid)
        sent.slot.failures = 0
        sent.slot.answered += 1
        request = sent.queued.request
        self.answered[request.kind] += 1
        self.latency[request.kind].observe(time.monotonic() - sent.queued.submitted_at)
        self.compute_seconds += compute_seconds
        self.audio_seconds += request.duration
        self._pump()
        self._call(sent.session.on_result, sent.session, request, output, compute_seconds,
                   attempts)

    def _failed(self, gid: int, exc: BaseException) -> None:
        sent = self._sent.pop(gid, None)
        if sent is None:
            return
        sent.session.in_engine.discard(gid)
        sent.slot.sent.discard(gid)
        if self._elsewhere(sent.slot, exc):
            self._requeue(sent, exc)
        else:
            # A partial stopped for a waiting final was not lost: the next one hears more.
            if not (isinstance(exc, EngineError) and exc.error_type == "PartialInterrupted"):
                self.failed += 1
            self._call(sent.session.on_failed, sent.session, sent.queued.request, exc)
        self._pump()

    def _error(self, slot: EngineSlot, exc: BaseException, fatal: bool) -> None:
        if self._closed or slot.engine is None:
            return
        others = self._others_live(slot)
        if fatal:
            slot.fatal = self._last_fatal = exc
            logger.error("engine %d failed for good: %s", slot.index, exc)
            if slot.recovery is None or slot.recovery.done():
                slot.recovery = asyncio.ensure_future(self._recover(slot))
        elif others:  # its child is restarting: give its work to the others meanwhile
            self._elsewhere(slot, exc)
        if fatal or others:
            for gid in list(slot.sent):
                sent = self._withdraw(gid)
                if sent is not None and others:
                    self._requeue(sent, exc)
            self._pump()
        for session in list(self._sessions.values()):
            if fatal and not others:
                session.in_engine.clear()
            self._call(session.on_error, session, exc, fatal and not others)

    # ------------------------------------------------------------------ restarts

    async def _recover(self, slot: EngineSlot) -> None:
        """Start fresh engine processes for ``slot`` with back-off until one runs, or give
        up on it (and on the host when it was the last engine).
        """
        while not self._closed:
            if slot.failures >= self._max_restarts:
                logger.error("engine %d failed %d times in a row; giving up: %s", slot.index,
                             slot.failures + 1, slot.fatal)
                slot.gave_up = True
                if all(s.gave_up for s in self._slots):
                    assert self._gave_up is not None
                    self._gave_up.set()
                return
            delay = self._restart_backoff_s * 2 ** slot.failures
            slot.failures += 1
            logger.warning("restarting engine %d in %.0f s (attempt %d of %d)", slot.index,
                           delay, slot.failures, self._max_restarts)
            await asyncio.sleep(delay)
            old, engine = slot.engine, self._make_engine(slot)
            if old is not None:
                await asyncio.to_thread(old.close, 1.0)
            try:
                await asyncio.to_thread(engine.start)
            except Exception as exc:
                await asyncio.to_thread(engine.close, 1.0)
                slot.fatal = self._last_fatal = exc
                logger.error("the restarted engine %d failed: %s", slot.index, exc)
                continue
            slot.engine = engine
            slot.fresh_starts += 1
            slot.fatal = None
            logger.warning("engine %d is running again", slot.index)
            self._pump()
            return
