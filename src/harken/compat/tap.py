"""The compat recorder's audio source: microphone and pushed audio, with a tap on both.

RealtimeSTT hands users the audio it records (``on_recorded_chunk``, the audio given to
``on_transcription_start``, ``last_transcription_bytes``) and lets them turn the microphone
off while pushing audio (``set_microphone(False)``). :class:`TapSource` is the
:class:`~harken.sources.base.AudioSource` that makes this possible: it forwards a
microphone's blocks (while the microphone is on) and pushed chunks to the recorder, keeps the
last ``keep_s`` seconds in a ring (addressed by stream sample, the recorder's own clock) and
calls ``on_chunk`` with each chunk as 16 kHz int16 bytes.

Threads: the microphone's reader thread and feeding threads call the sink; one lock keeps
the ring in the order the recorder receives the audio. ``on_chunk`` runs on those threads.

:func:`feed_files` is RealtimeSTT's ``feed_audio_file``: files decoded and pushed in 20 ms
blocks, paced at real time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from os import PathLike
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..sources.base import AudioSink, AudioSource
from ..sources.push import PushSource

__all__ = ["TapSource", "feed_files"]

SAMPLE_RATE = 16000


class TapSource:
    """Microphone (optional) plus pushed audio, taped into a ring.

    Args:
        mic: the microphone source, or None for pushed audio only.
        on_chunk: ``on_chunk(pcm16_bytes)`` for every chunk the recorder receives, or None.
        keep_s: seconds of recent audio kept for :meth:`slice`.
    """

    realtime: bool = True

    def __init__(self, mic: AudioSource | None, on_chunk: Callable[[bytes], Any] | None,
                 keep_s: float) -> None:
        self._mic = mic
        self._push = PushSource()
        self._on_chunk = on_chunk
        self._ring = np.zeros(int(keep_s * SAMPLE_RATE), dtype=np.float32)
        self._written = 0
        self._lock = threading.Lock()
        self._sink: AudioSink | None = None
        self.mic_on = mic is not None
        """False drops the microphone's audio (``set_microphone(False)``)."""

    @property
    def written(self) -> int:
        """Samples (16 kHz) delivered to the recorder so far."""
        return self._written

    def start(self, sink: AudioSink) -> None:
        """Start delivering pushed audio, and the microphone's, to ``sink``."""
        self._sink = sink
        self._push.start(_Tap(self, sink, from_mic=False))
        if self._mic is not None:
            self._mic.start(_Tap(self, sink, from_mic=True))

    def feed(self, chunk: Any, sample_rate: int) -> None:
        """Push audio (int16 bytes or an array) at ``sample_rate`` Hz; thread-safe."""
        self._push.feed(chunk, sample_rate)

    def deliver(self, samples: NDArray[np.float32], sink: AudioSink, from_mic: bool) -> None:
        """Tape ``samples`` and hand them to ``sink`` (called by the taps)."""
        if from_mic and not self.mic_on:
            return
        with self._lock:
            n = len(samples)
            size = len(self._ring)
            if n >= size:
                self._ring[:] = samples[-size:]
            else:
                start = self._written % size
                first = min(n, size - start)
                self._ring[start:start + first] = samples[:first]
                self._ring[:n - first] = samples[first:]
            self._written += n
            sink.write(samples)
        if self._on_chunk is not None:
            self._on_chunk((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())

    def slice(self, start: int, end: int) -> NDArray[np.float32]:
        """The taped samples ``start`` to ``end`` (16 kHz sample indexes), as far as kept."""
        with self._lock:
            size = len(self._ring)
            start = max(start, self._written - size, 0)
            end = min(end, self._written)
            if end <= start:
                return np.zeros(0, dtype=np.float32)
            idx = np.arange(start, end) % size
            out: NDArray[np.float32] = self._ring[idx]
            return out

    def close(self) -> None:
        """Stop the microphone and the push source; idempotent."""
        if self._mic is not None:
            self._mic.close()
        self._push.close()


def feed_files(paths: Iterable[str | PathLike[str]], feed: Callable[[Any, int], None], *,
               normalize: bool, target_peak: float, realtime: bool) -> None:
    """Decode each file and hand it to ``feed(samples, sample_rate)`` in 20 ms blocks.

    Args:
        paths: the audio files, fed one after the other.
        feed: takes a float32 block and its sample rate in Hz.
        normalize: scale each file so its peak is ``target_peak`` (0 to 1).
        target_peak: the peak after normalising.
        realtime: pace the blocks at real time (False: as fast as ``feed`` takes them).
    """
    from ..sources.file import decode_audio

    for path in paths:
        audio, rate = decode_audio(path)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if normalize and peak > 0:
            audio = np.clip(audio * (target_peak / peak), -1.0, 1.0).astype(np.float32)
        block = max(1, rate // 50)
        began = time.monotonic()
        for i in range(0, len(audio), block):
            feed(audio[i:i + block], rate)
            if realtime:
                delay = began + (i + block) / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)


class _Tap:
    """The sink a part of :class:`TapSource` writes to."""

    def __init__(self, tap: TapSource, sink: AudioSink, from_mic: bool) -> None:
        self._tap = tap
        self._sink = sink
        self._from_mic = from_mic

    def write(self, samples: NDArray[np.float32]) -> None:
        self._tap.deliver(samples, self._sink, self._from_mic)

    def end(self) -> None:
        if not self._from_mic:
            self._sink.end()

    def error(self, exc: BaseException) -> None:
        self._sink.error(exc)
