"""Threads that run ``text(on_transcription_finished)`` callbacks, as RealtimeSTT does.

RealtimeSTT's ``text(callback)`` transcribes on the calling thread, then starts a new thread
that calls ``callback(text)`` and returns at once, so a slow callback never holds up the
next ``text()``. :class:`CallbackThreads` does the same and owns those threads: at most
``limit`` run at once (one more waits for the oldest to finish), an exception in a
callback is logged and raised by the next :meth:`CallbackThreads.check`, and
:meth:`CallbackThreads.join` waits for them (bounded) at shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["CallbackThreads"]

_LOG = logging.getLogger("harken.compat")


class CallbackThreads:
    """Runs callbacks on threads of their own; joined by :meth:`join`.

    Args:
        limit: callback threads running at most; a further one first waits for the oldest.
    """

    def __init__(self, limit: int = 8) -> None:
        self._limit = limit
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    def run(self, callback: Callable[[Any], Any], value: Any) -> None:
        """Call ``callback(value)`` on a new thread ("harken-compat-text") and return."""
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            oldest = self._threads[0] if len(self._threads) >= self._limit else None
        if oldest is not None:
            oldest.join()
        thread = threading.Thread(target=self._call, args=(callback, value),
                                  name="harken-compat-text", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _call(self, callback: Callable[[Any], Any], value: Any) -> None:
        try:
            callback(value)
        except Exception as exc:  # never lost: raised by the next check()
            _LOG.exception("on_transcription_finished raised")
            with self._lock:
                if self._error is None:
                    self._error = exc

    def check(self) -> None:
        """Raise the first exception a callback raised since the last check."""
        with self._lock:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds in all for the running callbacks (not from one)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads, self._threads = self._threads, []
        for thread in threads:
            if thread is threading.current_thread():
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                _LOG.warning("an on_transcription_finished callback is still running after "
                             "%.1f s; leaving it", timeout)
