"""RequestBook: the engine requests' send order, cancellation, retries and crash accounting.

Pure bookkeeping, no process: the integration tests in test_worker_process.py cover the same
rules through a real child; these pin each rule on its own.
"""

from __future__ import annotations

import numpy as np
import pytest

from harken.engine.base import TranscribeRequest
from harken.errors import LifecycleError, WorkerError
from harken.worker.request_book import RequestBook


def request(request_id: int, kind: str = "final", seconds: float = 0.1) -> TranscribeRequest:
    audio = np.zeros(int(seconds * 16000), dtype=np.float32)
    return TranscribeRequest(request_id, 0, kind, audio, 0, len(audio))  # type: ignore[arg-type]


def send_all(book: RequestBook, gen: int = 1) -> list[int]:
    sent = []
    now = 0.0
    while (entry := book.next_to_send(gen)) is not None:
        now += 1.0
        book.mark_sent(entry, gen, now)
        sent.append(entry.request.request_id)
    return sent


def test_finals_go_in_order_and_one_partial_at_a_time() -> None:
    book = RequestBook()
    book.add(request(1, "partial"))
    book.add(request(2))
    book.add(request(3))
    assert send_all(book) == [2, 3, 1]
    book.add(request(4, "partial"))
    assert send_all(book) == []  # partial 1 is still in flight
    assert book.answered(1) is not None
    assert send_all(book) == [4]
    assert book.active == 3 and len(book.in_flight(1)) == 3


def test_a_newer_partial_replaces_a_waiting_one() -> None:
    book = RequestBook()
    book.add(request(1, "partial"))
    book.add(request(2, "partial"))
    assert book.active == 1
    assert send_all(book) == [2]


def test_duplicate_ids_and_too_many_finals_are_refused() -> None:
    book = RequestBook(max_waiting_finals=2)
    book.add(request(1))
    with pytest.raises(LifecycleError, match="already pending"):
        book.add(request(1))
    book.add(request(2))
    with pytest.raises(WorkerError, match="2 final requests are waiting"):
        book.add(request(3))


def test_cancel_forgets_a_waiting_request_and_marks_a_sent_one() -> None:
    book = RequestBook()
    book.add(request(1))
    book.add(request(2))
    first = book.next_to_send(1)
    assert first is not None and first.request.request_id == 1
    book.mark_sent(first, 1, 0.0)
    entry = book.cancel(2)
    assert entry is not None and not entry.cancelled  # never sent: just dropped
    assert book.next_to_send(1) is None and book.active == 1
    book2 = RequestBook()
    book2.add(request(5))
    send_all(book2)
    sent_entry = book2.cancel(5)
    assert sent_entry is not None and sent_entry.cancelled  # the child must be told
    assert book2.active == 0 and len(book2) == 1  # kept until its answer comes
    assert book2.cancel(5) is None and book2.cancel(99) is None


def test_failed_requests_are_retried_until_max_attempts() -> None:
    book = RequestBook()
    book.add(request(1))
    assert send_all(book) == [1]
    outcome = book.failed(1, "RuntimeError", max_attempts=2)
    assert outcome is not None and outcome[1] is False  # back in the queue
    assert send_all(book) == [1]
    outcome = book.failed(1, "RuntimeError", max_attempts=2)
    assert outcome is not None and outcome[1] is True and outcome[0].attempts == 2
    assert len(book) == 0


def test_superseded_and_cancelled_failures_are_dropped_quietly() -> None:
    book = RequestBook()
    book.add(request(1, "partial"))
    send_all(book)
    outcome = book.failed(1, "Superseded", max_attempts=3)
    assert outcome is not None and outcome[1] is False and len(book) == 0
    book.add(request(2))
    send_all(book)
    assert book.failed(2, "Cancelled", max_attempts=3) is None and len(book) == 0
    assert book.failed(42, "RuntimeError", max_attempts=3) is None


def test_an_interrupted_partial_is_given_up_at_once_never_retried() -> None:
    """Its owner must hear it failed (the pipeline sends the next partial only then)."""
    book = RequestBook()
    book.add(request(1, "partial"))
    send_all(book)
    outcome = book.failed(1, "PartialInterrupted", max_attempts=3)
    assert outcome is not None and outcome[1] is True and outcome[0].request.request_id == 1
    assert len(book) == 0 and send_all(book) == []


def test_a_crash_costs_a_try_only_for_the_request_being_transcribed() -> None:
    book = RequestBook()
    for i in (1, 2, 3):
        book.add(request(i))
    assert send_all(book, gen=1) == [1, 2, 3]
    failed = book.child_lost(1, max_attempts=1)
    assert [e.request.request_id for e in failed] == [1]
    # Request 1 (sent first) was the culprit and used its only try; 2 and 3 go again.
    assert send_all(book, gen=2) == [2, 3]
    assert [e.request.request_id for e in book.in_flight(2)] == [2, 3]
    assert all(e.tries == 1 for e in book.in_flight(2))


def test_finals_taken_back_go_before_the_finals_still_waiting() -> None:
    # A crash seen before the writer sent request 3: 1 and 2 come back from the dead child
    # and are sent again first, in their order; then 3. The same for a retried failure.
    book = RequestBook()
    book.add(request(1))
    book.add(request(2))
    assert send_all(book, gen=1) == [1, 2]
    book.add(request(3))
    assert book.child_lost(1, max_attempts=3) == []
    assert send_all(book, gen=2) == [1, 2, 3]
    book.add(request(4))
    outcome = book.failed(3, "RuntimeError", max_attempts=3)
    assert outcome is not None and outcome[1] is False
    assert send_all(book, gen=2) == [3, 4]


def test_drain_returns_the_live_requests_and_empties_the_book() -> None:
    book = RequestBook()
    book.add(request(1))
    book.add(request(2))
    send_all(book)
    book.cancel(2)
    assert [e.request.request_id for e in book.drain()] == [1]
    assert len(book) == 0 and book.next_to_send(1) is None
