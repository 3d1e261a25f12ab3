"""ReplayBuffer: the audio ``harken client`` sent since the last final, to send again.

When the connection is lost (the server drained with close code 1012, crashed, or the load
balancer moved the client), the audio after the last final the client received has no text
yet. The client keeps it here, bounded in seconds, and sends it first on the next
connection, so the utterance in flight is transcribed by the replica the client reaches.
Audio that did not fit is counted in :attr:`ReplayBuffer.lost_s`, so the user can be told.

Time is counted on one timeline across connections: seconds of audio since the stream
began (bytes / bytes per second). Pure: no I/O, no clock, no threads.
"""

from __future__ import annotations

from collections import deque

__all__ = ["ReplayBuffer"]


class ReplayBuffer:
    """Chunks of audio not yet covered by a final, at most ``max_seconds`` of them.

    Args:
        bytes_per_second: the audio's byte rate (sample rate x channels x 2 for pcm16).
        max_seconds: the most audio kept, in seconds; older chunks are dropped (and counted
            in :attr:`lost_s`) to make room.
        frame_bytes: bytes per sample frame (2 for mono pcm16): a chunk partly covered by a
            final is cut on a frame boundary.
    """

    def __init__(self, bytes_per_second: int, max_seconds: float, frame_bytes: int = 2) -> None:
        if bytes_per_second <= 0 or max_seconds < 0 or frame_bytes <= 0:
            raise ValueError("bytes_per_second and frame_bytes must be > 0, max_seconds >= 0")
        self._rate = bytes_per_second
        self._frame = frame_bytes
        self._limit = int(max_seconds * bytes_per_second)
        self._chunks: deque[bytes] = deque()
        self._kept = 0
        self._start = 0
        """Byte position of the first kept chunk on the stream's timeline."""
        self.lost_s = 0.0
        """Seconds of audio dropped unconfirmed because the buffer was full."""

    @property
    def start_s(self) -> float:
        """Stream time of the first kept chunk, in seconds (the end when none is kept)."""
        return self._start / self._rate

    @property
    def sent_s(self) -> float:
        """Seconds of audio appended since the stream began."""
        return (self._start + self._kept) / self._rate

    @property
    def kept_s(self) -> float:
        """Seconds of audio kept for a replay."""
        return self._kept / self._rate

    def chunks(self) -> list[bytes]:
        """The kept chunks, oldest first."""
        return list(self._chunks)

    def append(self, chunk: bytes) -> None:
        """Keep ``chunk`` (about to be sent); drop the oldest chunks beyond the limit."""
        self._chunks.append(chunk)
        self._kept += len(chunk)
        while self._kept > self._limit and self._chunks:
            old = self._chunks.popleft()
            self._kept -= len(old)
            self._start += len(old)
            self.lost_s += len(old) / self._rate

    def confirm(self, until_s: float) -> None:
        """A final covers the stream up to ``until_s`` seconds: drop the audio before it
        (a chunk partly covered keeps its uncovered frames).
        """
        until = int(until_s * self._rate) // self._frame * self._frame
        while self._chunks and self._start < until:
            first = self._chunks[0]
            cut = min(len(first), until - self._start)
            if cut == len(first):
                self._chunks.popleft()
            else:
                self._chunks[0] = first[cut:]
            self._kept -= cut
            self._start += cut
