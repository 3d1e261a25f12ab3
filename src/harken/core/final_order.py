"""Finals leave the pipeline in utterance order, and speculative finals only once confirmed.

An early final is requested while the silence after speech is still too short to end the
utterance: :meth:`FinalOrder.speculate` keeps its request aside, and an answer that comes
back for it is held. :meth:`FinalOrder.confirm` (the silence lasted) commits it;
:meth:`FinalOrder.revoke` (speech resumed) drops it and its held answer;
:meth:`FinalOrder.keep` (speech resumed after a long enough pause, with pause pieces on)
commits it as a finished piece of the utterance, whose answer goes out marked
``split=True`` like a piece cut at the maximum length. Committed finals are released
strictly in the order they were committed, also when a restarted engine answers out of
order; answers to requests that are neither speculative nor committed (cancelled, or
unknown) are stale and dropped. Pure bookkeeping: no I/O, no clock, no threads.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from ..engine.base import TranscribeRequest
from ..events import FinalTranscript, TranscriptionStarted
from .outputs import CancelRequest, ConfirmRequest, FinalFailed, Output

__all__ = ["FinalOrder"]

Answer = FinalTranscript | FinalFailed
"""What a final request ends as: its transcript, or why there is none."""


class FinalOrder:
    """Holds final answers until they may go out. Not thread-safe: one stream, one thread."""

    def __init__(self) -> None:
        self._speculative: dict[int, TranscribeRequest] = {}  # utterance id -> request
        self._held: dict[int, Answer] = {}  # request id -> answer to a speculative request
        self._order: deque[int] = deque()  # committed request ids, in utterance order
        self._ready: dict[int, Answer] = {}  # answered, waiting for earlier ones
        self._pieces: set[int] = set()  # request ids kept as pieces, not yet answered

    def commit(self, request: TranscribeRequest) -> TranscriptionStarted:
        """``request`` is its utterance's final; it goes out after those committed before."""
        self._order.append(request.request_id)
        return TranscriptionStarted(request.utterance_id, request.duration)

    def speculate(self, request: TranscribeRequest) -> None:
        """``request`` is an early final of its utterance: hold its answer until confirmed."""
        self._speculative[request.utterance_id] = request

    def revoke(self, utterance_id: int) -> CancelRequest:
        """Speech resumed: forget the utterance's early final; the engine may drop it."""
        request = self._speculative.pop(utterance_id)
        self._held.pop(request.request_id, None)
        return CancelRequest(request.request_id)

    def confirm(self, utterance_id: int) -> list[Output]:
        """The silence lasted: commit the utterance's early final and release what may go."""
        request = self._speculative.pop(utterance_id)
        out: list[Output] = [ConfirmRequest(request.request_id), self.commit(request)]
        held = self._held.pop(request.request_id, None)
        if held is not None:
            self._ready[request.request_id] = held
            out.extend(self._release())
        return out

    def keep(self, utterance_id: int) -> list[Output]:
        """Speech resumed after a pause: the early final stays, as a finished piece."""
        request = self._speculative.pop(utterance_id)
        out: list[Output] = [ConfirmRequest(request.request_id), self.commit(request)]
        held = self._held.pop(request.request_id, None)
        if held is None:
            self._pieces.add(request.request_id)  # marked when its answer comes
        else:
            self._ready[request.request_id] = _as_piece(held)
            out.extend(self._release())
        return out

    def awaiting(self, utterance_id: int) -> bool:
        """True while the utterance's early final is out and its answer has not come back."""
        request = self._speculative.get(utterance_id)
        return request is not None and request.request_id not in self._held

    def is_early(self, request: TranscribeRequest) -> bool:
        """True when ``request`` is its utterance's early final, still unconfirmed."""
        speculative = self._speculative.get(request.utterance_id)
        return speculative is not None and speculative.request_id == request.request_id

    def answered(self, request: TranscribeRequest, answer: Answer) -> list[Output]:
        """The engine answered ``request``; return the finals that may go out now, in order."""
        if self.is_early(request):
            self._held[request.request_id] = answer  # released when the silence lasts
            return []
        if request.request_id not in self._order:
            return []  # cancelled or unknown: stale
        if request.request_id in self._pieces:
            self._pieces.discard(request.request_id)
            answer = _as_piece(answer)
        self._ready[request.request_id] = answer
        return self._release()

    def _release(self) -> list[Output]:
        out: list[Output] = []
        while self._order and self._order[0] in self._ready:
            out.append(self._ready.pop(self._order.popleft()))
        return out


def _as_piece(answer: Answer) -> Answer:
    """A piece's final says that the utterance goes on after it."""
    return replace(answer, split=True) if isinstance(answer, FinalTranscript) else answer
