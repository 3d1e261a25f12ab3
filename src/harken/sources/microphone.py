"""A source that records from a microphone through sounddevice (PortAudio).

Threads: PortAudio's callback thread only copies each block into a bounded queue (a full
queue drops the block and counts it; the callback never blocks, logs or calls user code).
The thread "harken-mic", started by ``start()``, drains the queue, downmixes, resamples to
16 kHz and calls ``sink.write``. sounddevice is imported in ``start()`` (extra "mic").
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._threads import join_thread
from ..audio.convert import check_sample_rate
from ..audio.resample import StreamResampler
from ..errors import AudioSourceError, ConfigError, LifecycleError
from ..units import SAMPLE_RATE, ms_to_samples
from .base import AudioSink, report_failure
from .devices import import_sounddevice, list_input_devices, resolve_input_device

__all__ = ["MicrophoneSource"]

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 2.0
"""How long close() waits for the drain thread, in seconds."""
_QUEUE_S = 2.0
"""How much audio the callback queue holds before it drops blocks, in seconds."""
_STALL_S = 10.0
"""A running stream that delivers no audio for this long is reported dead, in seconds."""
_POLL_S = 0.1
"""How often the drain thread checks the stream while no audio arrives, in seconds."""


class MicrophoneSource:
    """An :class:`~harken.sources.base.AudioSource` that records from an input device.

    Args:
        device: None for the default input device, a PortAudio device index, or a
            case-insensitive substring of the device name (see ``harken devices``).
        sample_rate: the rate to open the device at, in Hz; None uses the device's
            default rate. Audio is resampled to 16 kHz either way.
        block_ms: the length of each block PortAudio delivers, in ms (5 to 1000).

    Raises:
        ConfigError: an argument has the wrong type or range.
        AudioFormatError: ``sample_rate`` is outside 4000 to 384000 Hz.
    """

    realtime: bool = True

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sample_rate: int | None = None,
        block_ms: int = 32,
    ) -> None:
        if device is not None and not (
            (isinstance(device, int) and not isinstance(device, bool) and device >= 0)
            or (isinstance(device, str) and device.strip())
        ):
            raise ConfigError(
                "device must be None (the default input), a device index >= 0 or part of a "
                f"device name, got {device!r}"
            )
        if isinstance(block_ms, bool) or not isinstance(block_ms, int) \
                or not 5 <= block_ms <= 1000:
            raise ConfigError(f"block_ms must be an int from 5 to 1000 ms, got {block_ms!r}")
        self.device = device
        self.sample_rate = None if sample_rate is None else check_sample_rate(sample_rate)
        self.block_ms = block_ms
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._state = "created"  # created | started | closed
        self._stream: Any = None
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue[NDArray[np.float32]] = queue.Queue(maxsize=1)
        self._dropped = 0
        self._status_events = 0
        self.device_info: dict[str, Any] | None = None
        """After start(): ``index``, ``name``, ``sample_rate`` (Hz) and ``channels`` opened."""

    @property
    def dropped_blocks(self) -> int:
        """Blocks dropped because the queue was full (the drain thread fell behind)."""
        return self._dropped

    @property
    def status_events(self) -> int:
        """Callbacks that carried PortAudio status flags (e.g. input overflow)."""
        return self._status_events

    def _callback(self, indata: NDArray[np.float32], frames: int, time_info: Any,
                  status: Any) -> None:
        # PortAudio's thread: copy and enqueue, nothing else.
        if status:
            self._status_events += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self._dropped += 1

    def start(self, sink: AudioSink) -> None:
        """Open the device, start recording and the "harken-mic" thread.

        Args:
            sink: where float32 mono 16 kHz samples go; ``sink.write`` should not block.

        Raises:
            LifecycleError: the source was already started or closed.
            BackendNotInstalled: sounddevice is missing (extra "mic").
            AudioSourceError: PortAudio is missing, the device is unknown (the message lists
                the input devices) or cannot be opened.
        """
        with self._lock:
            if self._state != "created":
                raise LifecycleError(
                    f"MicrophoneSource.start() was called on a source that is {self._state}; "
                    "create a new MicrophoneSource to record again"
                )
            sd = import_sounddevice()
            devices = list_input_devices()
            index = resolve_input_device(self.device, devices)
            info = next(d for d in devices if d["index"] == index)
            rate = self.sample_rate or check_sample_rate(round(info["default_samplerate"]))
            blocksize = max(1, ms_to_samples(self.block_ms, rate))
            self._queue = queue.Queue(maxsize=max(4, int(_QUEUE_S * 1000 / self.block_ms)))
            stream = self._open_stream(sd, index, rate, blocksize, int(info["channels"]))
            self.device_info = {"index": index, "name": info["name"], "sample_rate": rate,
                                "channels": int(stream.channels)}
            thread = threading.Thread(target=self._drain, args=(stream, sink, rate),
                                      name="harken-mic", daemon=True)
            try:
                stream.start()
            except Exception as exc:
                stream.close(ignore_errors=True)
                raise AudioSourceError(
                    f"cannot start recording from {info['name']!r}: {exc}") from exc
            self._stream = stream
            self._state = "started"
            thread.start()
            self._thread = thread
            logger.debug("recording from device %d %r at %d Hz, %d channel(s), %d-frame blocks",
                         index, info["name"], rate, stream.channels, blocksize)

    def _open_stream(self, sd: Any, index: int, rate: int, blocksize: int,
                     max_channels: int) -> Any:
        """Open an input stream, mono if the device allows it, else its first channels."""
        last_error: Exception | None = None
        for channels in dict.fromkeys((1, min(2, max_channels), max_channels)):
            try:
                return sd.InputStream(
                    device=index, samplerate=rate, channels=channels, dtype="float32",
                    blocksize=blocksize, callback=self._callback,
                    finished_callback=self._finished.set,
                )
            except (sd.PortAudioError, ValueError) as exc:
                logger.debug("opening device %d with %d channel(s) failed: %s",
                             index, channels, exc)
                last_error = exc
        raise AudioSourceError(
            f"cannot open input device {index} at {rate} Hz: {last_error}"
        ) from last_error

    def _drain(self, stream: Any, sink: AudioSink, rate: int) -> None:
        resampler = StreamResampler(rate, SAMPLE_RATE)
        last_audio = time.monotonic()
        seen_dropped = seen_status = 0
        try:
            while not self._stop.is_set():
                try:
                    block = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    if self._stop.is_set():
                        break
                    if self._finished.is_set() or not stream.active:
                        raise AudioSourceError(
                            "the microphone stream stopped unexpectedly "
                            "(was the device disconnected?)") from None
                    if time.monotonic() - last_audio > _STALL_S:
                        raise AudioSourceError(
                            f"the microphone delivered no audio for {_STALL_S:.0f} s "
                            "(was the device disconnected?)") from None
                    continue
                last_audio = time.monotonic()
                if self._dropped != seen_dropped or self._status_events != seen_status:
                    seen_dropped, seen_status = self._dropped, self._status_events
                    logger.debug("microphone: %d block(s) dropped, %d status flag(s) so far",
                                 seen_dropped, seen_status)
                out = resampler.process(_downmix(block))
                if out.size:
                    sink.write(out)
        except Exception as exc:  # reported to the sink, never lost in this thread
            report_failure(sink, exc, stopping=self._stop.is_set(), what="recording failed",
                           logger=logger)

    def close(self) -> None:
        """Stop and close the stream and join the thread; idempotent, at most ~2 s."""
        with self._lock:
            if self._state == "closed":
                return
            self._state = "closed"
            self._stop.set()
            stream, self._stream = self._stream, None
            thread = self._thread
        if stream is not None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception as exc:  # closing must not fail; the device may be gone
                logger.debug("closing the microphone stream failed: %r", exc)
        join_thread(thread, _JOIN_TIMEOUT_S, logger, "is the sink blocking?")
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break


def _downmix(block: NDArray[np.float32]) -> NDArray[np.float32]:
    """(frames, channels) float32 from the device -> 1-D float32 in [-1, 1]."""
    mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
    out: NDArray[np.float32] = np.clip(np.nan_to_num(mono), -1.0, 1.0).astype(np.float32)
    return out
