"""Calls user callbacks on one thread ("harken-dispatch"), in event order.

A callback that raises is logged and reported as an :class:`~harken.events.ErrorEvent`
(where="callback"); the dispatcher goes on. A callback that blocks delays only later
callbacks, never audio capture or transcription: the queue is bounded and events beyond it
are counted as dropped and logged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from ..events import ErrorEvent, Event

__all__ = ["Dispatcher"]

_LOG = logging.getLogger(__name__)

Listener = Callable[[Event], None]


class Dispatcher:
    """Owns the callback thread.

    Args:
        listeners: called with every event, in order.
        max_events: events that may wait for slow callbacks before new ones are dropped.
    """

    def __init__(self, listeners: list[Listener], max_events: int = 10_000) -> None:
        self._listeners = list(listeners)
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=max_events)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0
        """Events dropped because callbacks fell too far behind."""
        self._delivered = threading.Condition()
        self._counts = [0, 0]  # events queued, events passed to every listener

    def add(self, listener: Listener) -> None:
        """Add a listener (takes effect for events emitted afterwards)."""
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def start(self) -> None:
        """Start the callback thread."""
        self._thread = threading.Thread(target=self._run, name="harken-dispatch", daemon=True)
        self._thread.start()

    def on_own_thread(self) -> bool:
        """True when called from a callback (on the dispatch thread itself)."""
        return self._thread is threading.current_thread()

    def emit(self, event: Event) -> None:
        """Queue an event for the listeners; never blocks."""
        try:
            with self._delivered:
                self._queue.put_nowait(event)
                self._counts[0] += 1
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                _LOG.error("callbacks are too slow: %d events dropped so far", self.dropped)

    def wait_delivered(self, timeout: float | None) -> bool:
        """Wait until every event queued so far has reached the listeners; True if so.

        From a callback (the dispatch thread itself) it returns True at once: the events
        before the current one are delivered, and waiting for later ones would never end.
        """
        if self.on_own_thread():
            return True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._delivered:
            target = self._counts[0]
            while self._counts[1] < target:
                thread = self._thread
                if thread is None or not thread.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._delivered.wait(0.1 if left is None else min(left, 0.1))
        return True

    def close(self, timeout: float) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then stop the thread."""
        thread = self._thread
        if thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        if thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                _LOG.warning("a callback is still running after %.1f s; leaving it", timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            with self._lock:
                listeners = self._listeners
            for listener in listeners:
                try:
                    listener(event)
                except Exception as exc:  # a user callback failed: report, go on
                    _LOG.exception("callback %r raised", listener)
                    if not isinstance(event, ErrorEvent):
                        self._deliver_error(ErrorEvent(exc, fatal=False, where="callback"))
            with self._delivered:
                self._counts[1] += 1
                self._delivered.notify_all()

    def _deliver_error(self, event: ErrorEvent) -> None:
        with self._lock:
            listeners = self._listeners
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                _LOG.exception("callback %r raised while handling an error", listener)
