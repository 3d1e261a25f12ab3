"""The parent's bookkeeping of engine requests: waiting, in flight, cancelled, tried.

:class:`RequestBook` holds every request submitted to an
:class:`~harken.worker.process.EngineProcess` until it is answered, fails for good or is
cancelled, and decides what to send next: finals in order, at most one partial in flight,
a newer partial replacing a waiting one. It does no I/O and is not thread-safe: the
EngineProcess calls it with its own lock held, from the caller's thread (submit, cancel)
and from its writer and reader threads.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

from ..engine.base import TranscribeRequest
from ..errors import LifecycleError, WorkerError

__all__ = ["Pending", "RequestBook"]


@dataclass(eq=False)
class Pending:
    """One submitted request and what has happened to it."""

    request: TranscribeRequest
    attempts: int = 0
    """How many times the request has been sent to a child."""
    sent_gen: int | None = None
    """The generation of the child holding it; None while it waits to be sent."""
    sent_at: float = 0.0
    """``time.monotonic()`` seconds when it was last sent."""
    unstarted: int = 0
    """Sends lost with a crashed child before it began on this request (not tries)."""
    cancelled: bool = False
    """cancel() was called while the child held it: its answer is dropped when it comes."""

    @property
    def tries(self) -> int:
        """Sends the engine worked on: what ``max_attempts`` limits."""
        return self.attempts - self.unstarted


class RequestBook:
    """Requests not yet answered, and the send queues: finals in order, one partial.

    Args:
        max_waiting_finals: finals that may wait to be sent before :meth:`add` refuses more.
    """

    def __init__(self, max_waiting_finals: int = 1024) -> None:
        self._max_waiting_finals = max_waiting_finals
        self._pending: dict[int, Pending] = {}
        self._finals: collections.deque[int] = collections.deque()
        self._partial: int | None = None

    def __len__(self) -> int:
        """Requests held, cancelled ones awaiting their answer included."""
        return len(self._pending)

    @property
    def active(self) -> int:
        """Requests submitted and not yet answered, failed or cancelled."""
        return sum(not p.cancelled for p in self._pending.values())

    def add(self, request: TranscribeRequest) -> None:
        """Queue a new request; a partial replaces a partial still waiting to be sent.

        Raises:
            LifecycleError: the request id is already pending.
            WorkerError: too many finals are waiting to be sent.
        """
        if request.request_id in self._pending:
            raise LifecycleError(f"request {request.request_id} is already pending")
        if request.kind == "partial":
            if self._partial is not None:
                self._pending.pop(self._partial, None)
            self._partial = request.request_id
        else:
            if len(self._finals) >= self._max_waiting_finals:
                raise WorkerError(f"{len(self._finals)} final requests are waiting for the "
                                  "engine process; it cannot keep up")
            self._finals.append(request.request_id)
        self._pending[request.request_id] = Pending(request)

    def cancel(self, request_id: int) -> Pending | None:
        """Forget a request, or mark it cancelled when a child holds it.

        Returns:
            The entry (with ``cancelled`` set when a child holds it: the caller tells that
            child), or None for an unknown, answered or already cancelled id.
        """
        entry = self._pending.get(request_id)
        if entry is None or entry.cancelled:
            return None
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
        return entry

    def in_flight(self, gen: int) -> list[Pending]:
        """The requests sent to the child of generation ``gen`` and not yet answered."""
        return [p for p in self._pending.values() if p.sent_gen == gen]

    def next_to_send(self, gen: int) -> Pending | None:
        """Take the next request for the child of generation ``gen`` off the send queues.

        The oldest waiting final goes first; a waiting partial goes only while no partial
        is in flight. The caller marks the entry sent with :meth:`mark_sent`.
        """
        while True:
            request_id: int | None = None
            if self._finals:
                request_id = self._finals.popleft()
            elif self._partial is not None and not any(
                    p.sent_gen == gen and p.request.kind == "partial"
                    for p in self._pending.values()):
                request_id, self._partial = self._partial, None
            if request_id is None:
                return None
            entry = self._pending.get(request_id)
            if entry is not None:
                return entry

    @staticmethod
    def mark_sent(entry: Pending, gen: int, now: float) -> None:
        """Record that ``entry`` was sent to the child of generation ``gen`` at ``now`` s."""
        entry.sent_gen = gen
        entry.sent_at = now
        entry.attempts += 1

    def answered(self, request_id: int) -> Pending | None:
        """Remove and return an answered request (None if unknown)."""
        return self._pending.pop(request_id, None)

    def failed(self, request_id: int, error_type: str,
               max_attempts: int) -> tuple[Pending, bool] | None:
        """Apply the engine's "failed" answer to a request: retry it, or give it up.

        A "Superseded" partial (replaced in the child) is dropped; a "PartialInterrupted"
        one is given up at once (its owner learns it is no longer in flight); a request tried
        ``max_attempts`` times is given up; any other goes back in the send queue.

        Returns:
            None when there is nothing to report (an unknown or cancelled request), else
            the entry and whether it was given up for good.
        """
        entry = self._pending.get(request_id)
        if entry is None:
            return None
        if entry.cancelled or error_type == "Cancelled":
            del self._pending[request_id]
            return None
        if error_type == "PartialInterrupted":  # no retry: a newer partial will follow
            del self._pending[request_id]
            return entry, True
        if error_type == "Superseded" or entry.tries >= max_attempts:
            del self._pending[request_id]
            return entry, error_type != "Superseded"
        entry.sent_gen = None
        self._requeue(entry)
        return entry, False

    def child_lost(self, gen: int, max_attempts: int) -> list[Pending]:
        """Take back the requests a crashed child of generation ``gen`` held.

        Only the oldest was being transcribed (the child serves one at a time, in the
        order sent); the others never started, so that send is not a try for them. Else
        one hang behind a queue of finals would use up every queued final's tries at once.
        They go back before the requests still waiting, in the order they were sent.

        Returns:
            The requests that have now been tried ``max_attempts`` times (removed); the
            rest go back in the send queues, and cancelled ones are forgotten.
        """
        inflight = self.in_flight(gen)
        culprit = min(inflight, key=lambda e: (e.sent_at, e.request.kind != "final"),
                      default=None)
        failed: list[Pending] = []
        back: list[Pending] = []
        for entry in sorted(inflight, key=lambda e: e.sent_at):
            entry.sent_gen = None
            if entry is not culprit:
                entry.unstarted += 1
            if entry.cancelled:
                del self._pending[entry.request.request_id]
            elif entry.tries >= max_attempts:
                del self._pending[entry.request.request_id]
                failed.append(entry)
            else:
                back.append(entry)
        for entry in reversed(back):  # each goes to the front: the oldest ends up first
            self._requeue(entry)
        return failed

    def drain(self) -> list[Pending]:
        """Forget everything; return the requests that were not cancelled."""
        active = [e for e in self._pending.values() if not e.cancelled]
        self.clear()
        return active

    def clear(self) -> None:
        """Forget every request."""
        self._pending.clear()
        self._finals.clear()
        self._partial = None

    def _requeue(self, entry: Pending) -> None:
        """Put an unanswered request back in the send queues; a final goes first: it was
        sent before every final still waiting (requeued at the back, a crash seen before
        the writer sent the next final had the restarted engine answer out of order).
        """
        request_id = entry.request.request_id
        if entry.request.kind == "partial":
            if self._partial is None:
                self._partial = request_id
            elif self._partial != request_id:
                self._pending.pop(request_id, None)  # a newer partial is waiting
        elif request_id not in self._finals:
            self._finals.appendleft(request_id)
