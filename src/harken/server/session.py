"""StreamSession: one client's audio stream on the server, built on the pure core.

A session owns a :class:`~harken.core.pipeline.SpeechPipeline` with its own loaded VAD, a
decoder for the client's encoding and a :class:`~harken.audio.resample.StreamResampler` to
16 kHz. It routes the pipeline's outputs: events go to ``emit``, requests to the shared
:class:`~harken.server.engine_host.EngineHost`, whose answers come back into the pipeline.

Thread: everything here runs on the server's asyncio event loop (the pipeline is not
thread-safe, and the host calls back on the loop). Feeding audio runs the VAD inline; at
~0.15 ms per 32 ms frame for WebRTC+Silero that is ~0.5% of a core per real-time stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ..audio.convert import to_float32_mono
from ..audio.resample import StreamResampler
from ..config import SAMPLE_RATE, RealtimeConfig, VadConfig, WakeConfig
from ..core.outputs import route_outputs
from ..core.pipeline import (
    CancelRequest,
    ConfirmRequest,
    FinalFailed,
    Output,
    SpeechPipeline,
)
from ..engine.base import DecodeHints, EngineOutput, TranscribeRequest
from ..errors import LifecycleError
from ..events import ErrorEvent, Event
from ..turn.base import TurnModel
from ..vad.base import VoiceActivityDetector
from ..wake.base import PhraseMatcher, WakeWordDetector
from .engine_host import EngineHost, HostSession

__all__ = ["StreamSession"]

logger = logging.getLogger(__name__)

_NO_HINTS = DecodeHints()


class StreamSession:
    """Turns one client's audio into events, with transcription by the shared host.

    Lifecycle: :meth:`open` (takes a place in the host: admission), :meth:`begin` (the
    audio format is known: builds the pipeline), :meth:`feed_bytes` / :meth:`feed`,
    :meth:`flush` and :meth:`drain` (end of stream; :meth:`begin` may start another), and
    :meth:`close`.

    Args:
        host: the running engine host.
        name: for logs (e.g. the client's address).
        emit: called on the loop with each :class:`~harken.events.Event`; engine failures
            arrive as :class:`~harken.events.ErrorEvent` (``where="engine"``).
        vad_config: segmentation settings (:meth:`begin` may replace them per stream).
        on_final_failed: called on the loop with the request of an utterance the engine
            could not transcribe and the error; None: such a failure is emitted as an
            :class:`~harken.events.ErrorEvent` (``where="engine"``) instead.
    """

    def __init__(self, host: EngineHost, name: str, emit: Callable[[Event], None], *,
                 vad_config: VadConfig,
                 on_final_failed: Callable[[TranscribeRequest, BaseException], None]
                 | None = None) -> None:
        self._host = host
        self.name = name
        self._emit = emit
        self._vad_config = vad_config
        self._on_final_failed = on_final_failed
        self._vad: VoiceActivityDetector | None = None
        self._wake_detector: WakeWordDetector | None = None
        self._pipeline: SpeechPipeline | None = None
        self._resampler = StreamResampler(SAMPLE_RATE)
        self._encoding = "float32"
        self._channels = 1
        self._hints = _NO_HINTS
        self._progress = asyncio.Event()
        self._slot: HostSession | None = None
        self._finals_out: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.audio_seconds = 0.0
        """Seconds of audio received over the session's life."""
        self.stream_seconds = 0.0
        """Seconds of audio received since the current stream's :meth:`begin`."""
        self.fatal: BaseException | None = None
        """Set when the engine failed for good: the session cannot go on."""

    @property
    def started(self) -> bool:
        """True between :meth:`begin` and the end of the stream."""
        return self._pipeline is not None

    @property
    def in_utterance(self) -> bool:
        """True while the person is speaking (an utterance is open)."""
        return self._pipeline is not None and self._pipeline.in_utterance

    def begin(self, vad: VoiceActivityDetector, realtime: RealtimeConfig, *,
              sample_rate: int = SAMPLE_RATE, encoding: str = "float32", channels: int = 1,
              language: str | None = None, languages: tuple[str, ...] = (),
              hints: DecodeHints | None = None,
              vad_config: VadConfig | None = None, turn: TurnModel | None = None,
              wake: WakeWordDetector | PhraseMatcher | None = None,
              wake_config: WakeConfig | None = None) -> None:
        """Start a stream in the given format.

        Args:
            vad: a loaded detector for this session only (closed by :meth:`close`).
            realtime: partial and early-final settings.
            sample_rate: the client's rate in Hz.
            encoding: pcm16, float32, ulaw or alaw (for :meth:`feed_bytes`).
            channels: interleaved channels in the client's audio.
            language: passed to the engine with every request, if given.
            languages: with no language, the engine detects only among these (empty: its
                own setting).
            hints: more decode hints for every request (e.g. ``initial_prompt``); they win
                over the pipeline's own.
            vad_config: segmentation settings from this stream on (None: keep the
                session's).
            turn: a loaded turn model, for smart turn detection (``VadFactory.turn``).
            wake: a loaded wake word detector (closed by :meth:`close` or the next
                :meth:`begin`) or a phrase matcher: only what follows a wake word is
                transcribed; None: everything.
            wake_config: the wake word timeout and activation delay (with ``wake``).

        Raises:
            AudioFormatError: the sample rate is out of range.
        """
        if self._vad is not None and self._vad is not vad:
            self._vad.close()
        if self._pipeline is not None and self._slot is not None:
            # A new stream on the same session: requests of the old one must not reach the
            # new pipeline (both number their requests from 1), so leave and rejoin the host.
            self._host.close_session(self._slot)
            self._finals_out.clear()
            self._idle.set()
            self._slot = self._host.open_session(self.name, self._on_result, self._on_failed,
                                                 self._on_error)
        if vad_config is not None:
            self._vad_config = vad_config
        vad.reset()
        self._vad = vad
        self._resampler = StreamResampler(sample_rate)
        self._close_wake()
        if isinstance(wake, WakeWordDetector):
            self._wake_detector = wake
        self._pipeline = SpeechPipeline(vad, self._vad_config, realtime, turn=turn,
                                        wake=wake, wake_config=wake_config)
        self._encoding = encoding
        self._channels = channels
        self.stream_seconds = 0.0
        self._hints = (hints or _NO_HINTS).merged(DecodeHints(language=language,
                                                              languages=languages or None))

    @property
    def outstanding(self) -> int:
        """Finals submitted and not yet answered."""
        return len(self._finals_out)

    def open(self) -> None:
        """Take a place in the host.

        Raises:
            ServerBusy: the host has no room for another session.
        """
        self._slot = self._host.open_session(self.name, self._on_result, self._on_failed,
                                             self._on_error)

    def close(self) -> None:
        """Leave the host: queued and running requests are withdrawn. Idempotent."""
        slot, self._slot = self._slot, None
        if slot is not None:
            self._host.close_session(slot)
        self._finals_out.clear()
        self._idle.set()
        self._progress.set()
        self._pipeline = None
        vad, self._vad = self._vad, None
        if vad is not None:
            vad.close()
        self._close_wake()

    def _close_wake(self) -> None:
        detector, self._wake_detector = self._wake_detector, None
        if detector is not None:
            detector.close()

    def feed_bytes(self, data: bytes) -> None:
        """Decode one binary frame in the session's format and feed it.

        Raises:
            AudioFormatError: the bytes are not audio in the announced format.
            ServerBusy: too many of this session's finals are waiting for the engine.
        """
        samples = to_float32_mono(data, encoding=self._encoding, channels=self._channels)
        self.feed(samples)

    def feed(self, samples: NDArray[np.float32]) -> None:
        """Feed float32 mono samples at the session's rate.

        Raises:
            ServerBusy: too many of this session's finals are waiting for the engine.
        """
        pipeline = self._pipeline
        if self._slot is None or pipeline is None:
            raise LifecycleError(f"session {self.name} is not open and started")
        seconds = len(samples) / self._resampler.in_rate
        self.audio_seconds += seconds
        self.stream_seconds += seconds
        self._route(pipeline.feed(self._resampler.process(samples)))

    def flush(self) -> None:
        """End of the stream: transcribe the open utterance; :meth:`begin` starts another."""
        pipeline = self._pipeline
        if self._slot is None or pipeline is None:
            return
        tail = self._resampler.flush()
        if len(tail):
            self._route(pipeline.feed(tail))
        self._route(pipeline.flush())

    def end_utterance(self) -> None:
        """End the open utterance now (if any) and transcribe it; the stream goes on."""
        pipeline = self._pipeline
        if pipeline is not None and self._slot is not None:
            self._route(pipeline.force_end())

    def wake_up(self) -> None:
        """Listen for a command as if the wake word had just been heard (no-op without
        wake words).
        """
        if self._pipeline is not None:
            self._pipeline.wake_up()

    async def drain(self, timeout: float) -> bool:
        """Wait until every submitted final is answered; True if it happened in time."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    # ------------------------------------------------------------------ routing

    def _request(self, request: TranscribeRequest) -> TranscribeRequest:
        if self._hints == _NO_HINTS:
            return request
        return dataclasses.replace(request, hints=request.hints.merged(self._hints))

    def _route(self, outputs: list[Output]) -> None:
        route_outputs(outputs, self)

    def on_request(self, request: TranscribeRequest) -> None:
        """Pipeline output: submit ``request`` to the host (finals are awaited by drain)."""
        slot = self._slot
        if slot is None:
            return
        early = False
        if request.kind == "final":
            self._finals_out.add(request.request_id)
            self._idle.clear()
            early = self._pipeline is not None and self._pipeline.is_early(request)
        self._host.submit(slot, self._request(request), early=early)

    def on_cancel(self, cancel: CancelRequest) -> None:
        """Pipeline output: withdraw a stale speculative final from the host."""
        self._done(cancel.request_id)
        if self._slot is not None:
            self._host.cancel(self._slot, cancel.request_id)

    def on_confirm(self, confirm: ConfirmRequest) -> None:
        """Pipeline output: a speculative final stands; the host queues it like any final."""
        if self._slot is not None:
            self._host.confirm(self._slot, confirm.request_id)

    def on_final_failed(self, failed: FinalFailed) -> None:
        """Pipeline output: an utterance the engine could not transcribe."""
        if self._on_final_failed is not None:
            self._on_final_failed(failed.request, failed.error)
            return
        logger.warning("session %s: utterance %d could not be transcribed: %s",
                       self.name, failed.request.utterance_id, failed.error)
        self._emit(ErrorEvent(failed.error, fatal=False, where="engine"))

    def on_event(self, event: Event) -> None:
        """Pipeline output: an event for the client."""
        self._emit(event)

    async def wait_outstanding_below(self, limit: int) -> None:
        """Wait until fewer than ``limit`` finals are outstanding (backpressure for files)."""
        while len(self._finals_out) >= limit and self._slot is not None:
            self._progress.clear()
            await self._progress.wait()

    def _done(self, request_id: int) -> None:
        self._finals_out.discard(request_id)
        self._progress.set()
        if not self._finals_out:
            self._idle.set()

    def _on_result(self, request: TranscribeRequest, output: EngineOutput,
                   compute_seconds: float, attempts: int) -> None:
        pipeline = self._pipeline
        if self._slot is None or pipeline is None:
            return
        outputs = pipeline.on_result(request, output, compute_seconds, attempts)
        if request.kind == "final":
            self._done(request.request_id)
        self._route(outputs)

    def _on_failed(self, request: TranscribeRequest, exc: BaseException) -> None:
        pipeline = self._pipeline
        if self._slot is None or pipeline is None:
            return
        outputs = pipeline.on_failed(request, exc)
        if request.kind == "final":
            self._done(request.request_id)
        self._route(outputs)

    def _on_error(self, exc: BaseException, fatal: bool) -> None:
        if fatal:
            self.fatal = exc
            self._finals_out.clear()
            self._idle.set()
            self._progress.set()
        self._emit(ErrorEvent(exc, fatal=fatal, where="engine"))
