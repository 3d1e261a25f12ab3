"""The compat recorder's finished recordings and their finals, matched by utterance id.

harken transcribes every recording as soon as it ends; RealtimeSTT's users take recordings
one at a time (``wait_audio()``, then ``transcribe()``) and may skip one's final
(``on_transcription_start`` returning true, ``clear_audio_queue()``). :class:`Recordings`
keeps the finished recordings not taken yet (bounded: the oldest is dropped with a warning),
the finals that arrived for recordings not taken yet, and the ids whose finals are to be
dropped when they arrive.

Threads: :meth:`add` runs on harken's dispatch thread, the rest on user threads; one
condition guards everything.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

from ..events import FinalTranscript

__all__ = ["Recordings", "joined"]

_LOG = logging.getLogger("harken.compat")


def joined(parts: list[FinalTranscript]) -> FinalTranscript:
    """The finals of one recording split at max_utterance_s, as one final."""
    if len(parts) == 1:
        return parts[0]
    text = " ".join(p.text.strip() for p in parts if p.text.strip())
    return FinalTranscript(parts[0].utterance_id, text, parts[0].start, parts[-1].end,
                           parts[0].language, parts[0].language_probability,
                           tuple(w for p in parts for w in p.words),
                           sum(p.compute_seconds for p in parts))


class Recordings:
    """Finished recordings waiting to be taken, and their finals.

    Args:
        limit: recordings kept untaken before the oldest is dropped.
    """

    def __init__(self, limit: int = 64) -> None:
        self._limit = limit
        self._cond = threading.Condition()
        self._pending: collections.deque[tuple[int, float, float]] = collections.deque()
        self._stash: dict[int, list[FinalTranscript]] = {}
        self._skipped: set[int] = set()

    def add(self, uid: int, start: float, end: float) -> None:
        """A recording ended (``start``/``end`` in stream seconds)."""
        with self._cond:
            if len(self._pending) >= self._limit:
                old = self._pending.popleft()[0]
                self._skipped.add(old)
                _LOG.warning("no text() call took recording %d in time; dropped it", old)
            self._pending.append((uid, start, end))
            self._cond.notify_all()

    def waiting(self) -> bool:
        """True when finished recordings wait to be taken."""
        with self._cond:
            return bool(self._pending)

    def wake(self) -> None:
        """Make a waiting :meth:`take` look at its ``stop`` condition now."""
        with self._cond:
            self._cond.notify_all()

    def take(self, stop: Callable[[], bool]) -> tuple[int, float, float] | None:
        """Wait for the next recording: ``(uid, start_s, end_s)``, or None once ``stop()``.

        ``stop`` is checked every 0.1 s and after :meth:`wake`; it may raise to end the wait.
        """
        with self._cond:
            while not self._pending:
                if stop():
                    return None
                self._cond.wait(0.1)
            return self._pending.popleft()

    def skip(self, uid: int) -> None:
        """Drop recording ``uid``'s final (now, or when it arrives)."""
        with self._cond:
            if self._stash.pop(uid, None) is None:
                self._skipped.add(uid)

    def clear(self) -> None:
        """Drop every recording not taken yet, with its final."""
        with self._cond:
            for uid, _, _ in self._pending:
                if self._stash.pop(uid, None) is None:
                    self._skipped.add(uid)
            self._pending.clear()

    def final(self, uid: int, next_final: Callable[[], FinalTranscript | None],
              aborted: Callable[[], bool]) -> FinalTranscript | None:
        """Collect the finals of one recording (a split recording has several), joined.

        Args:
            uid: the recording's number, as counted by the recorder.
            next_final: the recorder's next final, or None after a short wait.
            aborted: checked while waiting; True returns None.
        """
        parts: list[FinalTranscript] = []
        while True:
            with self._cond:
                parts.extend(self._stash.pop(uid, []))
            if parts and not parts[-1].split:
                return joined(parts)
            final = next_final()
            if final is None:
                if aborted():
                    return None
                continue
            with self._cond:
                other = final.utterance_id
                if other == uid:
                    parts.append(final)
                elif other in self._skipped:
                    if not final.split:
                        self._skipped.discard(other)
                else:
                    self._stash.setdefault(other, []).append(final)
