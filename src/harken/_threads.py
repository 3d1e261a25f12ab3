"""join_thread: the bounded join that every owner of a background thread does in close()."""

from __future__ import annotations

import logging
import threading

__all__ = ["join_thread"]


def join_thread(thread: threading.Thread | None, timeout_s: float, log: logging.Logger,
                why: str = "") -> None:
    """Wait up to ``timeout_s`` seconds (at least 0.05) for ``thread`` to end; if it has not,
    warn on ``log``, naming the thread and ``why`` it may hang (e.g. "is the sink blocking?").

    Nothing happens for None or the calling thread (a close() from the thread's own
    callback cannot wait for itself).
    """
    if thread is None or thread is threading.current_thread():
        return
    wait = max(0.05, timeout_s)
    thread.join(wait)
    if thread.is_alive():
        log.warning("thread %s did not stop within %.2f s%s", thread.name, wait,
                    f" ({why})" if why else "")
