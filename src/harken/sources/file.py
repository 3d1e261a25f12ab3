"""harken's one audio-file decoder, and a source that plays a file.

One set of formats everywhere (``harken transcribe``, :class:`FileSource`, ``harken client``
and the server's upload endpoint): WAV files with 8-, 16-, 24- or 32-bit integer PCM are read
with the standard library's ``wave`` module; anything else (float WAV, FLAC, OGG, ...) with
soundfile, imported only when needed (extra "file"). A file is a path or its bytes.

- :func:`open_audio` opens a file for reading in blocks of frames (float32 mono at the
  file's own rate): the incremental API, for large files and streamed uploads.
- :func:`decode_audio` reads a whole file at its own rate; :func:`read_audio` reads it
  resampled to 16 kHz.
- :class:`FileSource` reads on its own thread, "harken-file-reader", started by
  ``start()``; the functions run on the caller's thread.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import wave
from typing import Any, BinaryIO, Protocol

import numpy as np
from numpy.typing import NDArray

from .._threads import join_thread
from ..audio.convert import to_float32_mono
from ..audio.resample import StreamResampler
from ..errors import (
    AudioSourceError,
    BackendNotInstalled,
    ConfigError,
    LifecycleError,
)
from ..units import SAMPLE_RATE, ms_to_samples
from .base import AudioSink, report_failure

__all__ = ["AudioReader", "FileSource", "decode_audio", "open_audio", "read_audio"]

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 2.0
"""How long close() waits for the reader thread, in seconds."""

StrPath = str | os.PathLike[str]
AudioData = str | os.PathLike[str] | bytes | BinaryIO
"""An audio file: its path, its whole contents, or a seekable binary file object."""


class AudioReader(Protocol):
    """An open audio file, read in blocks of frames (see :func:`open_audio`)."""

    rate: int
    """The file's sample rate in Hz."""
    frames: int
    """The file's length in frames, from its header (streamed WAVs may under-report it)."""

    def read(self, n_frames: int) -> NDArray[np.float32]:
        """Return up to ``n_frames`` frames as float32 mono (empty at the end; -1: all)."""

    def close(self) -> None:
        """Release the file."""


def _pcm_to_float32(raw: bytes, width: int, channels: int) -> NDArray[np.float32]:
    """Decode little-endian integer PCM of 1-4 bytes per sample to float32 mono."""
    if width == 1:  # 8-bit WAV is unsigned
        ints: NDArray[Any] = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0
        scale = 128.0
    elif width == 2:
        ints = np.frombuffer(raw, dtype="<i2")
        scale = 32768.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8  # sign-extend 24 bits
        scale = 8388608.0
    elif width == 4:
        ints = np.frombuffer(raw, dtype="<i4")
        scale = 2147483648.0
    else:  # pragma: no cover - wave rejects other widths
        raise AudioSourceError(f"WAV sample width of {width} bytes is not supported")
    samples = (ints.astype(np.float64) / scale).astype(np.float32)
    return to_float32_mono(samples, channels=channels)


_NOT_WAV = (wave.Error, EOFError, RuntimeError)
"""What ``wave`` raises for data it cannot parse (its chunk reader raises a bare
RuntimeError on a bad chunk size)."""

_MAX_CHANNELS = 64
"""The most channels a file may have (as :func:`~harken.audio.convert.to_float32_mono`)."""


class _WavReader:
    def __init__(self, source: str | BinaryIO) -> None:
        self._wav = wave.open(source, "rb")
        self.rate = self._wav.getframerate()
        self.frames = self._wav.getnframes()
        self._width = self._wav.getsampwidth()
        self._channels = self._wav.getnchannels()
        if not 1 <= self._channels <= _MAX_CHANNELS or self.rate <= 0:
            self._wav.close()
            raise wave.Error(f"{self._channels} channels at {self.rate} Hz")

    def read(self, n_frames: int) -> NDArray[np.float32]:
        try:
            raw = self._wav.readframes(n_frames)
        except _NOT_WAV as exc:
            raise AudioSourceError(f"the WAV data is damaged: {exc!r}") from exc
        usable = len(raw) - len(raw) % (self._width * self._channels)  # truncated last frame
        return _pcm_to_float32(raw[:usable], self._width, self._channels)

    def close(self) -> None:
        self._wav.close()


class _SoundFileReader:
    def __init__(self, source: str | BinaryIO, name: str) -> None:
        try:
            import soundfile
        except ImportError as exc:
            raise BackendNotInstalled("soundfile", "file", "Reading non-WAV files") from exc
        except OSError as exc:  # libsndfile itself is missing
            raise AudioSourceError(
                f"soundfile could not load the libsndfile library ({exc}); install it "
                "(Debian/Ubuntu: apt-get install libsndfile1)"
            ) from exc
        try:
            self._file = soundfile.SoundFile(source)
        except (RuntimeError, OSError, TypeError) as exc:  # LibsndfileError is a RuntimeError
            # libsndfile's text names the Python object it read from (a heap address when
            # that is a file object): keep only its reason.
            reason = getattr(exc, "error_string", None) or str(exc).rsplit(": ", 1)[-1]
            raise AudioSourceError(f"cannot read {name}: {reason}") from exc
        self.rate = int(self._file.samplerate)
        self.frames = int(self._file.frames)

    def read(self, n_frames: int) -> NDArray[np.float32]:
        try:
            block = self._file.read(n_frames, dtype="float32", always_2d=True)
            return to_float32_mono(block)
        except (RuntimeError, OSError, ValueError) as exc:  # AudioFormatError is a ValueError
            raise AudioSourceError(f"the audio data is damaged: {exc}") from exc

    def close(self) -> None:
        self._file.close()


def _open(path: str) -> AudioReader:
    """Open ``path`` with ``wave`` when it is integer PCM WAV, else with soundfile."""
    try:
        return _WavReader(path)
    except _NOT_WAV as exc:
        logger.debug("%s is not integer PCM WAV (%r); trying soundfile", path, exc)
    except OSError as exc:
        raise AudioSourceError(f"cannot open audio file {path!r}: {exc}") from exc
    return _SoundFileReader(path, f"audio file {path!r}")


def _open_stream(stream: BinaryIO, name: str) -> AudioReader:
    """Open a binary file object, by the same rules as a path (it must be seekable)."""
    start = stream.tell()
    try:
        return _WavReader(stream)
    except _NOT_WAV as exc:
        logger.debug("%s is not integer PCM WAV (%r); trying soundfile", name, exc)
    stream.seek(start)
    return _SoundFileReader(stream, name)


def open_audio(source: AudioData) -> AudioReader:
    """Open an audio file for reading in blocks of frames at its own rate.

    Args:
        source: a path, the file's bytes or a seekable binary file object (left open by
            the reader): a WAV file (integer PCM, any rate and channel count), or any
            format soundfile reads (needs the "file" extra).

    Returns:
        The open reader; close it when done.

    Raises:
        AudioSourceError: the file is missing or not audio that can be read.
        BackendNotInstalled: the file is not integer PCM WAV and soundfile is not installed.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _open_stream(io.BytesIO(source), f"audio of {len(source)} bytes")
    if isinstance(source, (str, os.PathLike)):
        return _open(_check_path(source))
    if hasattr(source, "read") and hasattr(source, "seek"):
        return _open_stream(source, "the audio stream")
    raise ConfigError("an audio file must be a path, bytes or a binary file object, got "
                      f"{type(source).__name__}")


def _read_all(reader: AudioReader) -> list[NDArray[np.float32]]:
    parts = [reader.read(max(reader.frames, 0) or -1)]
    while True:  # headers can under-report the length (streamed WAVs)
        more = reader.read(reader.rate * 10)
        if more.size == 0:
            return parts
        parts.append(more)


def decode_audio(source: AudioData) -> tuple[NDArray[np.float32], int]:
    """Read a whole audio file as float32 mono at its own rate.

    Args:
        source: a path or the file's bytes (formats as :func:`open_audio`).

    Returns:
        ``(samples, sample_rate_hz)``; the samples are in [-1, 1].

    Raises:
        AudioSourceError: the file is missing or not audio that can be read.
        BackendNotInstalled: the file is not integer PCM WAV and soundfile is not installed.
    """
    reader = open_audio(source)
    try:
        parts = _read_all(reader)
        rate = reader.rate
    finally:
        reader.close()
    return np.concatenate(parts).astype(np.float32, copy=False), rate


def _check_path(path: object) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    resolved = os.fspath(path)
    if not isinstance(resolved, str) or not resolved:
        raise ConfigError(f"path must be a non-empty text path, got {path!r}")
    if not os.path.isfile(resolved):
        raise AudioSourceError(f"audio file not found: {resolved!r}")
    return resolved


def read_audio(source: AudioData) -> NDArray[np.float32]:
    """Read a whole audio file as float32 mono at 16 kHz.

    Args:
        source: a path or the file's bytes: a WAV file (integer PCM, any rate and channel
            count), or any format soundfile reads (needs the "file" extra).

    Returns:
        The samples at 16 kHz, in [-1, 1].

    Raises:
        AudioSourceError: the file is missing or unreadable.
        BackendNotInstalled: the file is not integer PCM WAV and soundfile is not installed.
    """
    reader = open_audio(source)
    try:
        resampler = StreamResampler(reader.rate, SAMPLE_RATE)
        parts = [resampler.process(part) for part in _read_all(reader)]
        parts.append(resampler.flush())
    finally:
        reader.close()
    return np.concatenate(parts).astype(np.float32, copy=False)


class FileSource:
    """An :class:`~harken.sources.base.AudioSource` that plays a file into the sink.

    Args:
        path: the audio file (see :func:`read_audio` for the formats).
        realtime: False (default) delivers as fast as the sink accepts; True paces delivery
            to the file's duration (a stand-in for a live stream).
        chunk_ms: how much audio each ``sink.write`` carries, in ms (10 to 10000).

    Raises:
        AudioSourceError: the file does not exist.
        ConfigError: an argument has the wrong type or range.
    """

    def __init__(self, path: StrPath, *, realtime: bool = False, chunk_ms: int = 100) -> None:
        if not isinstance(realtime, bool):
            raise ConfigError(f"realtime must be True or False, got {realtime!r}")
        if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, int) \
                or not 10 <= chunk_ms <= 10000:
            raise ConfigError(f"chunk_ms must be an int from 10 to 10000 ms, got {chunk_ms!r}")
        self.path = _check_path(path)
        self.realtime = realtime
        self.chunk_ms = chunk_ms
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = "created"  # created | started | closed

    @property
    def duration_s(self) -> float:
        """The file's duration in seconds, from its header (opens the file briefly).

        Raises:
            AudioSourceError: the file cannot be read.
            BackendNotInstalled: soundfile is needed for this format and is missing.
        """
        reader = _open(self.path)
        try:
            return reader.frames / reader.rate if reader.rate > 0 else 0.0
        finally:
            reader.close()

    def start(self, sink: AudioSink) -> None:
        """Open the file and start the reader thread "harken-file-reader".

        Errors in opening the file are raised here; errors while reading go to
        ``sink.error``. At the end of the file the thread calls ``sink.end()``.

        Args:
            sink: where float32 mono 16 kHz samples go.

        Raises:
            LifecycleError: the source was already started or closed.
            AudioSourceError: the file cannot be opened or decoded.
            BackendNotInstalled: soundfile is needed for this format and is missing.
        """
        with self._lock:
            if self._state != "created":
                raise LifecycleError(
                    f"FileSource.start() was called on a source that is {self._state}; "
                    "create a new FileSource to read the file again"
                )
            reader = _open(self.path)
            self._state = "started"
            self._thread = threading.Thread(
                target=self._run, args=(reader, sink), name="harken-file-reader", daemon=True
            )
            self._thread.start()

    def _run(self, reader: AudioReader, sink: AudioSink) -> None:
        try:
            resampler = StreamResampler(reader.rate, SAMPLE_RATE)
            block = max(1, ms_to_samples(self.chunk_ms, reader.rate))
            began = time.monotonic()
            delivered = 0  # samples at 16 kHz
            while not self._stop.is_set():
                samples = reader.read(block)
                if samples.size == 0:
                    break
                out = resampler.process(samples)
                if out.size:
                    sink.write(out)
                    delivered += out.size
                if self.realtime:
                    wait = began + delivered / SAMPLE_RATE - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        break
            if self._stop.is_set():  # closed early: no end() for a stream that was cut off
                return
            tail = resampler.flush()
            if tail.size:
                sink.write(tail)
            sink.end()
        except Exception as exc:  # reported to the sink, never lost in this thread
            report_failure(sink, exc, stopping=self._stop.is_set(),
                           what=f"reading {self.path!r} failed", logger=logger)
        finally:
            reader.close()

    def close(self) -> None:
        """Stop the reader thread and close the file; idempotent, waits at most 2 s."""
        with self._lock:
            if self._state == "closed":
                return
            self._state = "closed"
            self._stop.set()
            thread = self._thread
        join_thread(thread, _JOIN_TIMEOUT_S, logger, "is the sink blocking?")
