"""A source fed by the user's code: ``feed(chunk, sample_rate)`` from any thread.

Used by ``Recorder.feed_audio()``, the server's per-connection sessions and tests. Each chunk
is converted (:func:`~harken.audio.convert.to_float32_mono`) and resampled to 16 kHz on the
feeding thread, then handed to the sink in blocks of at most 1 s, so that a sink applying
backpressure can slow a caller that pushes minutes of audio at once. There is no thread of
its own.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..audio.convert import check_sample_rate, to_float32_mono
from ..audio.resample import StreamResampler
from ..errors import LifecycleError
from ..units import SAMPLE_RATE
from .base import AudioSink

__all__ = ["PushSource"]

logger = logging.getLogger(__name__)

_BLOCK_S = 1
"""The longest block handed to ``sink.write`` in one call, in seconds."""


class PushSource:
    """An :class:`~harken.sources.base.AudioSource` whose audio is pushed with :meth:`feed`.

    Lifecycle: created -> :meth:`start` -> any number of :meth:`feed` -> :meth:`end`
    (optional, tells the sink the stream is over) -> :meth:`close`. ``feed`` is thread-safe;
    concurrent callers are served one chunk at a time, in the order they get the lock.
    """

    realtime: bool = True

    def __init__(self) -> None:
        self._state_lock = threading.Lock()
        self._feed_lock = threading.Lock()
        self._sink: AudioSink | None = None
        self._state = "created"  # created | started | ended | closed
        self._resampler: StreamResampler | None = None

    @property
    def state(self) -> str:
        """One of "created", "started", "ended" or "closed"."""
        return self._state

    def start(self, sink: AudioSink) -> None:
        """Begin delivering fed audio to ``sink``.

        Args:
            sink: where converted float32 mono 16 kHz samples go.

        Raises:
            LifecycleError: the source was already started or closed.
        """
        with self._state_lock:
            if self._state != "created":
                raise LifecycleError(
                    f"PushSource.start() was called on a source that is {self._state}; "
                    "create a new PushSource for a new stream"
                )
            self._sink = sink
            self._state = "started"

    def _check_feedable(self, what: str) -> AudioSink:
        state, sink = self._state, self._sink
        if state == "started" and sink is not None:
            return sink
        if state == "created":
            raise LifecycleError(
                f"PushSource.{what}() was called before start(); start the recorder (or "
                "call source.start(sink)) before feeding audio"
            )
        raise LifecycleError(
            f"PushSource.{what}() was called after the stream was {state}; "
            "no audio can be fed to it any more"
        )

    def feed(
        self,
        data: Any,
        sample_rate: int = SAMPLE_RATE,
        *,
        encoding: str | None = None,
        channels: int = 1,
    ) -> None:
        """Convert a chunk of audio, resample it to 16 kHz and hand it to the sink.

        May block while the sink applies backpressure. Empty chunks do nothing.

        Args:
            data: a numpy array (int16, float32 or float64; 1-D, or 2-D (frames, channels))
                or bytes; see :func:`~harken.audio.convert.to_float32_mono`.
            sample_rate: the chunk's sample rate in Hz (4000 to 384000). Changing it between
                chunks is allowed; the resampler restarts at the new rate.
            encoding: for bytes: "pcm16" (default), "float32", "ulaw"/"mulaw" or "alaw".
            channels: the number of interleaved channels in ``data``.

        Raises:
            LifecycleError: the source is not started, or was ended or closed.
            AudioFormatError: the chunk or the rate cannot be used; nothing of it is fed.
        """
        self._check_feedable("feed")
        rate = check_sample_rate(sample_rate)
        samples = to_float32_mono(data, encoding=encoding, channels=channels)
        if samples.size == 0:
            return
        with self._feed_lock:
            sink = self._check_feedable("feed")
            resampler = self._resampler
            if resampler is None or resampler.in_rate != rate:
                if resampler is not None:
                    logger.debug("push source rate changed %d Hz -> %d Hz",
                                 resampler.in_rate, rate)
                    self._write(sink, resampler.flush())
                resampler = self._resampler = StreamResampler(rate, SAMPLE_RATE)
            block = _BLOCK_S * rate
            for begin in range(0, samples.size, block):
                if self._state != "started":
                    logger.debug("push source %s while feeding; dropping the rest of a chunk",
                                 self._state)
                    return
                self._write(sink, resampler.process(samples[begin:begin + block]))

    @staticmethod
    def _write(sink: AudioSink, samples: NDArray[np.float32]) -> None:
        for begin in range(0, samples.size, _BLOCK_S * SAMPLE_RATE):
            sink.write(samples[begin:begin + _BLOCK_S * SAMPLE_RATE])

    def end(self) -> None:
        """Flush the resampler and tell the sink that the stream is over (``sink.end()``).

        Raises:
            LifecycleError: the source was not started, or was already ended or closed.
        """
        with self._feed_lock:
            sink = self._check_feedable("end")
            if self._resampler is not None:
                self._write(sink, self._resampler.flush())
                self._resampler = None
            with self._state_lock:
                self._state = "ended"
            sink.end()

    def close(self) -> None:
        """Stop delivering audio; idempotent, never blocks on the sink.

        A ``feed`` in progress on another thread stops after its current block.
        """
        with self._state_lock:
            if self._state == "closed":
                return
            self._state = "closed"
            self._sink = None
            self._resampler = None
