"""Where a speaker's audio goes: a callback, an iterator, the sound card or a WAV file.

Every sink takes chunks already converted to the speaker's rate and sample format. The
speaker's delivery thread ("harken-speak-out") calls ``write``; ``interrupt`` (called by
``stop()`` from any thread) drops what the sink still holds and wakes a blocked ``write``.
sounddevice is imported only when a sound-card sink opens.
"""

from __future__ import annotations

import collections
import os
import threading
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..errors import AudioSourceError, BackendNotInstalled, ConfigError

__all__ = ["CallbackSink", "DeviceSink", "IteratorSink", "Sink", "WavSink", "make_sink"]

Chunk = NDArray[Any]
"""A chunk of mono audio: int16 or float32, at the speaker's rate."""

_END = object()


@runtime_checkable
class Sink(Protocol):
    """The interface of an audio sink (implement it to send audio anywhere else)."""

    def open(self, sample_rate: int, sample_format: str) -> None:
        """Prepare for audio at ``sample_rate`` Hz in ``sample_format`` ("int16"/"float32")."""

    def write(self, chunk: Chunk) -> None:
        """Take one chunk; may block briefly."""

    def interrupt(self) -> None:
        """Drop audio the sink still holds (called by ``stop()``, from any thread)."""

    def close(self) -> None:
        """Finish; idempotent."""


class CallbackSink:
    """Calls ``on_audio(chunk)`` for each chunk, on the speaker's delivery thread."""

    def __init__(self, on_audio: Callable[[Chunk], object]) -> None:
        self._on_audio = on_audio

    def open(self, sample_rate: int, sample_format: str) -> None:
        """Nothing to open."""

    def write(self, chunk: Chunk) -> None:
        """Hand the chunk to the callback."""
        self._on_audio(chunk)

    def interrupt(self) -> None:
        """Nothing is held."""

    def close(self) -> None:
        """Nothing to close."""


class IteratorSink:
    """Holds up to ``max_chunks`` chunks for a consumer iterating :meth:`chunks`.

    A full sink makes ``write`` wait (the speaker then waits too); ``interrupt`` empties it.
    """

    def __init__(self, max_chunks: int = 8) -> None:
        self._cond = threading.Condition()
        self._items: collections.deque[Any] = collections.deque()
        self._max = max_chunks
        self._closed = False

    def open(self, sample_rate: int, sample_format: str) -> None:
        """Nothing to open."""

    def write(self, chunk: Chunk) -> None:
        """Queue the chunk, waiting while the consumer is ``max_chunks`` behind."""
        with self._cond:
            while len(self._items) >= self._max and not self._closed:
                self._cond.wait(0.05)
            if not self._closed:
                self._items.append(chunk)
                self._cond.notify_all()

    def interrupt(self) -> None:
        """Drop the chunks not yet taken."""
        with self._cond:
            self._items.clear()
            self._cond.notify_all()

    def close(self) -> None:
        """End the iteration once the queued chunks are taken."""
        with self._cond:
            if not self._closed:
                self._closed = True
                self._items.append(_END)
                self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Chunk | None:
        """The next chunk; None at the end (closed), TimeoutError after ``timeout`` s."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items), timeout):
                raise TimeoutError(f"no audio within {timeout} s")
            item = self._items[0]
            if item is _END:
                return None
            self._items.popleft()
            self._cond.notify_all()
            return item  # type: ignore[no-any-return]

    def chunks(self, timeout: float | None = None) -> Iterator[Chunk]:
        """Yield chunks as they come until the speaker closes.

        Raises:
            TimeoutError: no chunk came for ``timeout`` seconds.
        """
        while True:
            chunk = self.get(timeout)
            if chunk is None:
                return
            yield chunk


class WavSink:
    """Writes a 16-bit PCM mono WAV file (float32 chunks are converted)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._wav: wave.Wave_write | None = None

    def open(self, sample_rate: int, sample_format: str) -> None:
        """Create the file."""
        try:
            wav = wave.open(str(self.path), "wb")
        except OSError as exc:
            raise ConfigError(f"cannot write the WAV file {str(self.path)!r}: {exc}") from exc
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        self._wav = wav

    def write(self, chunk: Chunk) -> None:
        """Append the chunk."""
        if self._wav is None:
            return
        if chunk.dtype != np.int16:
            chunk = np.clip(np.rint(chunk * 32768.0), -32768, 32767).astype(np.int16)
        self._wav.writeframes(chunk.astype("<i2").tobytes())

    def interrupt(self) -> None:
        """Written audio stays written."""

    def close(self) -> None:
        """Finish the file (its header gets the final length)."""
        wav, self._wav = self._wav, None
        if wav is not None:
            wav.close()


class DeviceSink:
    """Plays on a sound card through sounddevice (imported in ``open``).

    The PortAudio callback takes audio from a small buffer the speaker fills in real time
    and plays silence when it runs dry; ``interrupt`` empties the buffer.

    Args:
        device: a sounddevice output device index or name; None for the default.
    """

    def __init__(self, device: int | str | None = None) -> None:
        self._device = device
        self._lock = threading.Lock()
        self._buffer: collections.deque[NDArray[np.float32]] = collections.deque()
        self._offset = 0
        self._stream: Any = None

    def open(self, sample_rate: int, sample_format: str) -> None:
        """Open and start the output stream.

        Raises:
            BackendNotInstalled: sounddevice is missing.
            AudioSourceError: the device cannot play mono audio at ``sample_rate``.
        """
        try:
            import sounddevice as sd
        except ImportError as exc:
            raise BackendNotInstalled("sounddevice", "mic", "playing on the sound card") from exc
        except OSError as exc:  # PortAudio library missing
            raise AudioSourceError(f"sounddevice cannot load PortAudio: {exc}") from exc
        try:
            sd.check_output_settings(device=self._device, channels=1, dtype="float32",
                                     samplerate=sample_rate)
            self._stream = sd.OutputStream(samplerate=sample_rate, channels=1,
                                           dtype="float32", device=self._device,
                                           callback=self._callback)
            self._stream.start()
        except Exception as exc:
            raise AudioSourceError(f"cannot play {sample_rate} Hz mono audio on output "
                                   f"device {self._device!r}: {exc}") from exc

    def _callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        out = outdata[:, 0]
        filled = 0
        with self._lock:
            while filled < frames and self._buffer:
                head = self._buffer[0]
                take = min(frames - filled, head.size - self._offset)
                out[filled:filled + take] = head[self._offset:self._offset + take]
                filled += take
                self._offset += take
                if self._offset >= head.size:
                    self._buffer.popleft()
                    self._offset = 0
        out[filled:] = 0.0

    def write(self, chunk: Chunk) -> None:
        """Queue the chunk for the callback."""
        if chunk.dtype == np.int16:
            chunk = chunk.astype(np.float32) / np.float32(32768.0)
        with self._lock:
            self._buffer.append(chunk)

    def interrupt(self) -> None:
        """Drop the audio not yet played."""
        with self._lock:
            self._buffer.clear()
            self._offset = 0

    def close(self) -> None:
        """Stop and close the stream."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.abort()
            stream.close()


def make_sink(sink: object, on_audio: Callable[[Chunk], object] | None) -> Sink:
    """Build the sink a Speaker's ``sink=`` / ``on_audio=`` arguments name.

    ``on_audio`` -> :class:`CallbackSink`; ``sink`` "device" or a device index -> the
    default (or that) sound card; a path ending ".wav" -> :class:`WavSink`; "iterator" or
    nothing -> :class:`IteratorSink`; an object with the :class:`Sink` methods -> itself.

    Raises:
        ConfigError: both or a wrong kind of sink given.
    """
    if on_audio is not None:
        if sink is not None:
            raise ConfigError("give either on_audio= or sink=, not both")
        if not callable(on_audio):
            raise ConfigError(f"on_audio must be callable, got {type(on_audio).__name__}")
        return CallbackSink(on_audio)
    if sink is None or sink == "iterator":
        return IteratorSink()
    if sink == "device":
        return DeviceSink()
    if isinstance(sink, int) and not isinstance(sink, bool):
        return DeviceSink(sink)
    if isinstance(sink, (str, os.PathLike)):
        if str(sink).lower().endswith(".wav"):
            return WavSink(sink)
        raise ConfigError(f"sink {str(sink)!r} is not understood: use 'device', 'iterator', "
                          "a device index or a path ending in .wav")
    if isinstance(sink, Sink):
        return sink
    raise ConfigError(f"sink must be 'device', 'iterator', a device index, a .wav path or a "
                      f"Sink object, got {type(sink).__name__}")
