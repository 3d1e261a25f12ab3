"""join_thread: the bounded join of every close()."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from harken._threads import join_thread

LOG = logging.getLogger("harken.test.threads")


def test_a_stuck_thread_is_waited_for_at_most_the_timeout_and_named(caplog):
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, name="harken-stuck", daemon=True)
    stuck.start()
    try:
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            started = time.monotonic()
            join_thread(stuck, 0.2, LOG, "is the sink blocking?")
            waited = time.monotonic() - started
        assert 0.15 < waited < 1.5
        assert [r.getMessage() for r in caplog.records] == [
            "thread harken-stuck did not stop within 0.20 s (is the sink blocking?)"]
    finally:
        release.set()
        stuck.join(2)


@pytest.mark.parametrize("timeout", [2.0, -1.0])
def test_a_thread_that_ends_is_joined_quietly(caplog, timeout):
    done = threading.Thread(target=time.sleep, args=(0.01,), name="harken-quick")
    done.start()
    time.sleep(0.05)
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        join_thread(done, timeout, LOG)
    assert not done.is_alive() and not caplog.records


def test_none_and_the_calling_thread_are_not_waited_for(caplog):
    seen: list[float] = []

    def close_from_inside() -> None:
        started = time.monotonic()
        join_thread(threading.current_thread(), 5.0, LOG)  # would raise or hang otherwise
        seen.append(time.monotonic() - started)

    worker = threading.Thread(target=close_from_inside)
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        join_thread(None, 5.0, LOG)
        worker.start()
        worker.join(5)
    assert seen and seen[0] < 0.5 and not caplog.records
