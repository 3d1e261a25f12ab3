"""The speaker's queue of sentences: what is to be synthesised, buffered and delivered.

:class:`SpeechQueue` keeps the utterances (one per ``speak()`` call), their units
(sentences) in speaking order, the requests in the engine program, and the errors waiting
for ``on_error``. It is the :class:`~harken.speak.host.SynthesisListener` of its requests,
so the host's reader thread fills it, while the speaker's delivery thread empties it. It
starts no thread; every method takes the condition it was given (re-entrant).
"""

from __future__ import annotations

import collections
import threading

import numpy as np
from numpy.typing import NDArray

from ..events import ErrorEvent
from .cutter import TextCutter
from .host import SpeechEngineHost
from .report import SpeechHandle
from .utterance import Unit, Utterance

__all__ = ["SpeechQueue"]

Action = tuple[Unit, NDArray[np.float32] | None, int]
"""(unit, the next piece of its audio or None at its end, the epoch it was taken in)."""


class SpeechQueue:
    """Utterances, their units and their requests, guarded by ``cond``.

    Args:
        cond: the speaker's condition (an RLock underneath); waiters are notified of
            every change.
        lookahead: sentences sent to the engine ahead of the one being delivered.
        speed: the speaking rate sent with every sentence.
    """

    def __init__(self, cond: threading.Condition, lookahead: int, speed: float) -> None:
        self.cond = cond
        self._lookahead = lookahead
        self._speed = speed
        self.units: collections.deque[Unit] = collections.deque()
        self.utterances: collections.deque[Utterance] = collections.deque()
        self.requests: dict[int, Unit] = {}
        self.errors: collections.deque[ErrorEvent] = collections.deque(maxlen=64)
        self.epoch = 0
        """Bumped by :meth:`clear`: audio taken in an older epoch must not be delivered."""
        self.host: SpeechEngineHost | None = None
        self.native_rate = 0

    # ------------------------------------------------------------------ text in

    def open(self) -> Utterance:
        """Queue a new utterance whose text is still to come."""
        with self.cond:
            utterance = Utterance(SpeechHandle(), TextCutter())
            self.utterances.append(utterance)
            return utterance

    def add_text(self, utterance: Utterance, piece: str, last: bool) -> bool:
        """Cut a piece into units and queue them; return False once it was stopped."""
        with self.cond:
            if utterance.finished:
                return False
            texts = utterance.cutter.feed(piece)
            if last:
                texts += utterance.cutter.flush()
                utterance.input_done = True
            for text in texts:
                unit = Unit(text, utterance)
                utterance.units.append(unit)
                self.units.append(unit)
            self.cond.notify_all()
            return True

    def clear(self) -> list[Utterance]:
        """Drop everything (cancelling its requests); return the utterances dropped.

        They are marked interrupted, not yet finished: the caller finishes them once the
        chunk being written (if any) is counted.
        """
        with self.cond:
            self.epoch += 1
            stopped = list(self.utterances)
            self.utterances.clear()
            for unit in self.units:
                if unit.request_id is not None and self.host is not None:
                    self.host.cancel(unit.request_id)
            self.units.clear()
            self.requests.clear()
            for utterance in stopped:
                utterance.interrupted = True
            self.cond.notify_all()
            return stopped

    def fail(self, utterance: Utterance, error: BaseException, where: str) -> None:
        """End an utterance with an error, drop its units and queue the error event."""
        with self.cond:
            if utterance.finished:
                return
            utterance.error = error
            utterance.input_done = True
            for unit in [u for u in self.units if u.utterance is utterance]:
                self.units.remove(unit)
                if unit.request_id is not None and self.host is not None:
                    self.requests.pop(unit.request_id, None)
                    self.host.cancel(unit.request_id)
            if utterance in self.utterances:
                self.utterances.remove(utterance)
            utterance.finish(self.native_rate)
            self.errors.append(ErrorEvent(error=error, fatal=False, where=where))
            self.cond.notify_all()

    # ------------------------------------------------------------------ audio out

    def next_action(self, chunk: int) -> Action | None:
        """The next thing to deliver, without waiting: a piece of at most ``chunk``
        samples, or a unit's end; None when there is nothing (or errors are waiting).
        """
        with self.cond:
            while not self.errors:
                self._submit_ahead()
                self._end_utterances()
                if not self.units:
                    return None
                unit = self.units[0]
                if unit.buffer:
                    return unit, unit.take(chunk), self.epoch
                if unit.error is not None:
                    self.fail(unit.utterance, unit.error, "engine")
                    continue
                if unit.total is None:
                    return None
                self.units.popleft()
                unit.utterance.handle._update(unit.utterance.report(self.native_rate))
                return unit, None, self.epoch
            return None

    def _submit_ahead(self) -> None:
        if self.host is None:
            return
        budget = self._lookahead + 1
        for unit in self.units:
            if budget <= 0:
                return
            budget -= 1
            if unit.request_id is None and unit.error is None:
                try:
                    unit.request_id = self.host.submit(unit.text, self, speed=self._speed)
                    self.requests[unit.request_id] = unit
                except Exception as exc:
                    unit.error = exc

    def _end_utterances(self) -> None:
        waiting = {id(u.utterance) for u in self.units}
        while self.utterances:
            head = self.utterances[0]
            if not head.input_done or id(head) in waiting:
                return
            self.utterances.popleft()
            head.finish(self.native_rate)

    # ------------------------------------------------------------------ SynthesisListener

    def on_audio(self, request_id: int, audio: NDArray[np.float32]) -> None:
        """Buffer a sentence's audio."""
        with self.cond:
            unit = self.requests.get(request_id)
            if unit is not None:
                unit.add(audio)
                self.cond.notify_all()

    def on_done(self, request_id: int, samples: int) -> None:
        """The sentence is complete."""
        with self.cond:
            unit = self.requests.pop(request_id, None)
            if unit is not None:
                unit.total = samples
                self.cond.notify_all()

    def on_failed(self, request_id: int, error: BaseException) -> None:
        """The sentence failed for good."""
        with self.cond:
            unit = self.requests.pop(request_id, None)
            if unit is not None:
                unit.error = error
                self.cond.notify_all()

    def on_restart(self, request_id: int) -> None:
        """Synthesis starts over: drop the buffer, skip what was already taken."""
        with self.cond:
            unit = self.requests.get(request_id)
            if unit is not None:
                unit.restart()
                self.cond.notify_all()
