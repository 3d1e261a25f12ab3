"""The queue behind ``Recorder.next_final()``: finals (or their errors) in delivery order.

The pipeline thread puts; any user thread takes, waiting in short steps so that Ctrl+C
stays responsive. Bounded: the oldest of 10,000 unread finals is dropped first.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from ..events import FinalTranscript

__all__ = ["FinalQueue"]

_WAIT_STEP_S = 0.1


class FinalQueue:
    """Finals waiting for ``next_final()``, and the condition its callers wait on.

    Args:
        maxlen: finals kept unread before the oldest is dropped.
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._items: collections.deque[FinalTranscript | BaseException] = \
            collections.deque(maxlen=maxlen)
        self._cond = threading.Condition()

    def put(self, item: FinalTranscript | BaseException) -> None:
        """Queue a final, or the error that replaced it, and wake the waiters."""
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake the waiters so that they run their ``check`` again (after a failure, close)."""
        with self._cond:
            self._cond.notify_all()

    def get(self, timeout: float | None, check: Callable[[], None]) -> FinalTranscript:
        """Take the oldest final, waiting up to ``timeout`` seconds (None: no limit).

        Args:
            timeout: seconds to wait for one; None waits until one comes or ``check`` raises.
            check: called while the queue is empty; raises to stop waiting.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            BaseException: the error queued in place of the final, or what ``check`` raised.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                check()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no final transcript within {timeout} s")
                self._cond.wait(_WAIT_STEP_S if remaining is None
                                else min(remaining, _WAIT_STEP_S))
            item = self._items.popleft()
        if isinstance(item, BaseException):
            raise item
        return item
