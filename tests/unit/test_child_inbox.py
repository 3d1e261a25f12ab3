"""The engine child's inbox hands cheap finals queued together to the engine as one batch."""

from __future__ import annotations

from typing import Any

from harken.worker.child import _Inbox
from harken.worker.protocol import Message


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def send(self, type: str, header: dict[str, Any], payload: bytes = b"") -> bool:
        self.messages.append((type, header))
        return True


def msg(rid: int, kind: str = "final", quality: str | None = "cheap") -> Message:
    return Message("transcribe", {"id": rid, "kind": kind,
                                  "hints": {"quality": quality} if quality else {}})


def ids(messages: list[Message]) -> list[int]:
    return [m.header["id"] for m in messages]


def test_cheap_finals_queued_together_come_out_as_one_batch() -> None:
    inbox = _Inbox(Sent())  # type: ignore[arg-type]
    for m in (msg(1, quality=None), msg(2), msg(3), msg(4), msg(5, quality="fast"),
              msg(6), msg(7, kind="partial")):
        inbox.put(m)
    assert ids(inbox.get(3)) == [1]  # a standard final goes alone
    assert ids(inbox.get(3)) == [2, 3, 4]  # up to the batch size
    assert ids(inbox.get(3)) == [5]  # not cheap: alone, and it ends the run of cheap ones
    assert ids(inbox.get(3)) == [6]
    assert ids(inbox.get(3)) == [7]  # the partial, after every final


def test_without_batching_one_at_a_time_and_closed_gives_nothing() -> None:
    inbox = _Inbox(Sent())  # type: ignore[arg-type]
    inbox.put(msg(1))
    inbox.put(msg(2))
    assert ids(inbox.get()) == [1]
    inbox.close()
    assert inbox.get(8) == []


def test_a_request_cancelled_after_it_was_taken_is_remembered_until_the_next_get() -> None:
    """The child skips the lone decode of a batch's leftover that was withdrawn meanwhile
    (an early final revoked while its batch ran)."""
    sent = Sent()
    inbox = _Inbox(sent)  # type: ignore[arg-type]
    for rid in (1, 2, 3):
        inbox.put(msg(rid))
    assert ids(inbox.get(2)) == [1, 2]
    inbox.cancel(2)  # taken: nothing to answer yet, but remembered
    inbox.cancel(3)  # queued: removed and answered "Cancelled" at once
    assert inbox.withdrawn(2) and not inbox.withdrawn(1)
    assert sent.messages == [("failed", {"id": 3, "error_type": "Cancelled",
                                         "message": "the request was cancelled",
                                         "traceback": ""})]
    inbox.put(msg(4))
    assert ids(inbox.get(2)) == [4] and not inbox.withdrawn(2)


def test_the_request_being_transcribed_may_stop_when_cancelled_or_a_final_waits() -> None:
    inbox = _Inbox(Sent())  # type: ignore[arg-type]
    inbox.put(msg(1, quality=None))
    assert ids(inbox.get()) == [1]
    assert not inbox.should_stop("final")
    inbox.cancel(1)  # a revoked early final, being transcribed
    assert inbox.should_stop("final")
    inbox.put(msg(2, kind="partial"))
    assert ids(inbox.get()) == [2]
    assert not inbox.should_stop("partial")  # the last get's cancellations are forgotten
    inbox.put(msg(6, kind="partial"))
    assert not inbox.should_stop("partial")  # a newer partial waits for this one anyway
    inbox.put(msg(3, quality=None))
    assert inbox.should_stop("partial") and not inbox.should_stop("final")
    for rid in (4, 5):
        inbox.put(msg(rid))
    assert ids(inbox.get(2)) == [3]  # not cheap: alone (finals before the partial)
    assert ids(inbox.get(2)) == [4, 5]
    inbox.cancel(4)
    assert not inbox.should_stop("final")  # a batch is never stopped halfway
