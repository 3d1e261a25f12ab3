"""The pipeline thread's inbox: bounded audio plus never-dropped control messages.

Sources write audio from their own threads; the engine reader thread posts results; user
threads post commands. The pipeline thread takes control messages first, and audio only when
it asks for it, so a busy engine can hold back a file source without holding back results.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import AudioSourceError

__all__ = ["Inbox"]


class Inbox:
    """A two-lane queue. Audio is bounded by ``max_samples``; control messages are not.

    Args:
        max_samples: audio samples that may wait unprocessed before :meth:`put_audio` blocks.
    """

    def __init__(self, max_samples: int) -> None:
        self._max_samples = max_samples
        self._audio: deque[Any] = deque()  # audio chunks and ordered commands
        self._audio_samples = 0
        self._control: deque[Any] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._unfinished = 0

    @property
    def unfinished(self) -> int:
        """Items queued or taken but not yet marked done with :meth:`task_done`."""
        return self._unfinished

    def task_done(self) -> None:
        """Mark one item returned by :meth:`get` as fully handled."""
        with self._cond:
            self._unfinished -= 1
            self._cond.notify_all()

    @property
    def audio_samples(self) -> int:
        """Samples of audio waiting."""
        return self._audio_samples

    def put_audio(self, samples: NDArray[np.float32], timeout: float) -> None:
        """Queue audio; block while the backlog is full, up to ``timeout`` seconds.

        Raises:
            AudioSourceError: the backlog stayed full for ``timeout`` seconds, or the inbox
                is closed.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._audio_samples + len(samples) > self._max_samples and self._audio:
                remaining = deadline - time.monotonic()
                if self._closed:
                    break
                if remaining <= 0:
                    raise AudioSourceError(
                        f"the recorder's audio backlog is full ({self._audio_samples} samples "
                        f"waiting for {timeout:.0f} s); audio arrives faster than it is processed")
                self._cond.wait(remaining)
            if self._closed:
                raise AudioSourceError("the recorder is closed; audio was not taken")
            self._audio.append(samples)
            self._audio_samples += len(samples)
            self._unfinished += 1
            self._cond.notify_all()

    def put_ordered(self, item: Any) -> None:
        """Queue a command in the audio lane: it is taken after the audio queued before it.

        Never blocks, never drops.
        """
        with self._cond:
            self._audio.append(item)
            self._unfinished += 1
            self._cond.notify_all()

    def put_control(self, item: Any) -> None:
        """Queue a control message ahead of all audio; never blocks, never drops."""
        with self._cond:
            self._control.append(item)
            self._unfinished += 1
            self._cond.notify_all()

    def get(self, timeout: float, allow_audio: bool = True) -> Any | None:
        """Return the next control message, else (if allowed) the next audio chunk.

        Returns None when nothing arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._control:
                    return self._control.popleft()
                if allow_audio and self._audio:
                    chunk = self._audio.popleft()
                    if isinstance(chunk, np.ndarray):
                        self._audio_samples -= len(chunk)
                        self._cond.notify_all()
                    return chunk
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def close(self) -> None:
        """Wake every waiter; later :meth:`put_audio` calls raise."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
