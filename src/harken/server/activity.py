"""Activity: what one connection has done, for the operator view (:mod:`.monitor`).

Each WebSocket connection keeps one. It records when each piece of audio arrived (stream
seconds against the server's clock) and, for every final, its text and the measured
end-of-speech -> final latency (E2F): the wall time from the arrival of the audio that
holds the utterance's last sample to the moment the final was queued for the client. That
includes the VAD's hangover, the queue wait and the engine's time: what the person waited.

Pure: the caller passes the clock (``time.monotonic()`` seconds), so it is tested with
plain numbers. Thread: loop-only, like the connection that owns it.
"""

from __future__ import annotations

import bisect
from collections import deque

__all__ = ["Activity"]

_MAX_MARKS = 2000
"""Audio arrival marks kept (about 200 s of 0.1 s messages); older ones are forgotten."""


class Activity:
    """Audio arrival times and the last final of one connection.

    Args:
        protocol: the wire protocol's short name ("harken", "openai-realtime", "rtstt").
        opened_at: when the connection opened, in ``time.monotonic()`` seconds.
    """

    def __init__(self, protocol: str, opened_at: float) -> None:
        self.protocol = protocol
        self.opened_at = opened_at
        self.audio_s = 0.0
        """Seconds of audio in the current stream so far."""
        self.last_final = ""
        """The text of the latest final (empty before the first)."""
        self.last_e2f_s: float | None = None
        """End-of-speech -> final latency of the latest final, in seconds."""
        self.finals = 0
        """Finals sent on this connection."""
        self._stream: deque[float] = deque(maxlen=_MAX_MARKS)
        self._arrived: deque[float] = deque(maxlen=_MAX_MARKS)

    def new_stream(self) -> None:
        """A new stream began: stream time starts again at 0."""
        self._stream.clear()
        self._arrived.clear()
        self.audio_s = 0.0

    def audio(self, stream_s: float, now: float) -> None:
        """Audio up to ``stream_s`` seconds of stream time has arrived at ``now``."""
        if self._stream and stream_s <= self._stream[-1]:
            return
        self._stream.append(stream_s)
        self._arrived.append(now)
        self.audio_s = stream_s

    def final(self, text: str, end_s: float, now: float) -> float | None:
        """A final whose speech ended at ``end_s`` (stream time) is sent at ``now``.

        Returns:
            Its E2F in seconds, or None when the arrival of that audio is no longer known.
        """
        self.finals += 1
        self.last_final = text
        i = bisect.bisect_left(list(self._stream), end_s - 1e-6)
        self.last_e2f_s = max(0.0, now - self._arrived[i]) if i < len(self._stream) else None
        return self.last_e2f_s

    def describe(self, name: str, now: float) -> dict[str, object]:
        """A JSON-ready row for the operator view."""
        return {"name": name, "protocol": self.protocol,
                "duration_s": round(now - self.opened_at, 1),
                "audio_s": round(self.audio_s, 1), "finals": self.finals,
                "last_final": self.last_final,
                "e2f_s": None if self.last_e2f_s is None else round(self.last_e2f_s, 3)}
