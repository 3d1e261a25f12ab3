"""The pure speech pipeline: audio in, events and engine requests out.

``SpeechPipeline`` does no I/O, reads no clock and starts no thread (bring-your-own-I/O, as
h11 does for HTTP). The recorder's pipeline thread feeds it float32 mono 16 kHz audio of any
chunk size and routes what comes back:

- :class:`~harken.events.Event` objects go to the user;
- :class:`~harken.engine.base.TranscribeRequest` objects go to the engine, whose answers come
  back through :meth:`SpeechPipeline.on_result` / :meth:`SpeechPipeline.on_failed`;
- :class:`CancelRequest` asks the engine to drop a speculative final that speech made stale;
- :class:`FinalFailed` reports an utterance the engine could not transcribe.

Live partials: while the person speaks, the growing utterance is sent as a ``partial``
request whenever ``partial_interval_ms`` of new audio has arrived and no partial is in flight
(so the cadence adapts to the engine's speed); answers pass through the stabiliser into
:class:`~harken.events.PartialTranscript` events. Partial answers for an utterance that has
ended are stale and dropped.

Early finals: the segmenter cuts the final's audio as soon as the silence reaches the kept
tail; the request goes out at once, its answer is held until the silence is long enough to
end the utterance, and it is cancelled if speech resumes. Finals are released strictly in
utterance order, also when a restarted engine answers out of order.

Tests drive it by pushing numpy arrays, with a fake VAD and no engine at all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..config import SAMPLE_RATE, RealtimeConfig, VadConfig
from ..engine.base import EngineOutput, TranscribeRequest
from ..errors import AudioFormatError
from ..events import (
    Event,
    FinalTranscript,
    PartialTranscript,
    SpeechEnded,
    SpeechStarted,
    TranscriptionStarted,
    Word,
)
from ..vad.base import FRAME_SAMPLES, VoiceActivityDetector
from .segmenter import (
    Segment,
    SegmentConfirmed,
    Segmenter,
    SegmenterEvent,
    SegmentRevoked,
    UtteranceEnded,
    UtteranceStarted,
)
from .stabilizer import Stabilizer

__all__ = ["CancelRequest", "FinalFailed", "Output", "SpeechPipeline"]


@dataclass(frozen=True)
class CancelRequest:
    """The engine may drop this request: its answer is no longer wanted."""

    request_id: int


@dataclass(frozen=True, eq=False)
class FinalFailed:
    """The final of ``request`` could not be produced; ``error`` says why."""

    request: TranscribeRequest
    error: BaseException


Output = Event | TranscribeRequest | CancelRequest | FinalFailed


def _seconds(samples: int) -> float:
    return samples / SAMPLE_RATE


class SpeechPipeline:
    """VAD, segmentation, partial scheduling and request bookkeeping for one audio stream.

    Args:
        vad: a loaded detector, called on every frame of FRAME_SAMPLES samples.
        config: segmentation settings.
        realtime: partial and early-final settings (defaults: both on).
    """

    def __init__(self, vad: VoiceActivityDetector, config: VadConfig | None = None,
                 realtime: RealtimeConfig | None = None) -> None:
        self._vad = vad
        self._realtime = realtime or RealtimeConfig()
        self._segmenter = Segmenter(config or VadConfig(),
                                    early_final=self._realtime.early_final)
        self._pending = np.zeros(0, dtype=np.float32)
        self._next_request = 1
        self._stabilizer = Stabilizer(self._realtime.stable_agreement)
        self._partial_inflight: int | None = None
        self._partial_mark = 0
        self._partial_interval = self._realtime.partial_interval_ms * SAMPLE_RATE // 1000
        self._partial_min = self._realtime.partial_min_ms * SAMPLE_RATE // 1000
        self._speculative: dict[int, TranscribeRequest] = {}  # utterance id -> request
        self._held: dict[int, Output] = {}  # answers to unconfirmed speculative requests
        self._order: deque[int] = deque()  # final request ids, in utterance order
        self._ready: dict[int, Output] = {}  # answered finals waiting for earlier ones

    @property
    def position(self) -> int:
        """Samples consumed so far: the stream clock, at 16 kHz."""
        return self._segmenter.position + len(self._pending)

    @property
    def in_utterance(self) -> bool:
        """True while the person is speaking (an utterance is open)."""
        return self._segmenter.active

    def feed(self, samples: NDArray[np.float32]) -> list[Output]:
        """Take float32 mono 16 kHz samples of any length; return what happened."""
        if samples.dtype != np.float32 or samples.ndim != 1:
            raise AudioFormatError(
                f"the pipeline takes 1-D float32 samples, got {samples.dtype} with shape "
                f"{samples.shape}; convert at the source with harken.audio.convert")
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        n_frames = len(samples) // FRAME_SAMPLES
        out: list[Output] = []
        for i in range(n_frames):
            frame = samples[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            speech = bool(self._vad.is_speech(frame))
            self._translate(self._segmenter.push(frame, speech), out)
            self._maybe_partial(out)
        self._pending = samples[n_frames * FRAME_SAMPLES:].copy()
        return out

    def flush(self) -> list[Output]:
        """End of stream (or pause): close the open utterance and transcribe it."""
        out: list[Output] = []
        if len(self._pending) and self._segmenter.active:
            frame = np.zeros(FRAME_SAMPLES, dtype=np.float32)
            frame[:len(self._pending)] = self._pending
            self._translate(self._segmenter.push(frame, False), out)
        self._pending = np.zeros(0, dtype=np.float32)
        self._translate(self._segmenter.force_end(), out)
        return out

    def force_start(self) -> list[Output]:
        """Start an utterance now, whatever the VAD says; it lasts until :meth:`force_end`."""
        out: list[Output] = []
        self._translate(self._segmenter.force_start(), out)
        return out

    def force_end(self) -> list[Output]:
        """End the open utterance now and transcribe it."""
        out: list[Output] = []
        self._translate(self._segmenter.force_end(), out)
        return out

    def on_result(self, request: TranscribeRequest, output: EngineOutput,
                  compute_seconds: float = 0.0, attempts: int = 1) -> list[Output]:
        """Turn the engine's answer to ``request`` into events (times in stream seconds)."""
        if request.kind == "partial":
            return self._partial_result(request, output)
        offset = _seconds(request.start_sample)
        words = tuple(Word(round(offset + w.start, 3), round(offset + w.end, 3), w.text,
                           w.probability) for w in output.words)
        final = FinalTranscript(
            utterance_id=request.utterance_id,
            text=output.text.strip(),
            start=_seconds(request.start_sample),
            end=_seconds(request.end_sample),
            language=output.language,
            language_probability=output.language_probability,
            words=words,
            compute_seconds=compute_seconds,
            attempts=attempts,
            split=request.split,
        )
        return self._answered(request, final)

    def on_failed(self, request: TranscribeRequest, error: BaseException) -> list[Output]:
        """The engine gave up on ``request``."""
        if request.kind == "partial":
            if self._partial_inflight == request.request_id:
                self._partial_inflight = None
            return []
        return self._answered(request, FinalFailed(request, error))

    # ------------------------------------------------------------------ internals

    def _answered(self, request: TranscribeRequest, result: Output) -> list[Output]:
        speculative = self._speculative.get(request.utterance_id)
        if speculative is not None and speculative.request_id == request.request_id:
            self._held[request.request_id] = result  # released when the silence lasts
            return []
        if request.request_id not in self._order:
            return []  # cancelled or unknown: stale
        self._ready[request.request_id] = result
        return self._release()

    def _release(self) -> list[Output]:
        out: list[Output] = []
        while self._order and self._order[0] in self._ready:
            out.append(self._ready.pop(self._order.popleft()))
        return out

    def _partial_result(self, request: TranscribeRequest,
                        output: EngineOutput) -> list[Output]:
        if self._partial_inflight == request.request_id:
            self._partial_inflight = None
        seg = self._segmenter
        if not seg.active or seg.utterance_id != request.utterance_id:
            return []  # the utterance ended meanwhile: its final says the rest
        stable, unstable = self._stabilizer.update(output.text.strip())
        return [PartialTranscript(request.utterance_id, stable, unstable)]

    def _maybe_partial(self, out: list[Output]) -> None:
        seg = self._segmenter
        if (not self._realtime.partials or self._partial_inflight is not None
                or not seg.speaking or seg.speculating):
            return
        audio_len = seg.position - seg.current_start_sample
        if audio_len < self._partial_min or seg.position - self._partial_mark < \
                self._partial_interval:
            return
        audio = seg.current_audio()
        request = self._request(seg.utterance_id, "partial", audio, seg.current_start_sample,
                                split=False, options={
                                    "beam_size": self._realtime.partial_beam_size,
                                    "word_timestamps": False})
        self._partial_inflight = request.request_id
        self._partial_mark = seg.position
        out.append(request)

    def _request(self, utterance_id: int, kind: str, audio: NDArray[np.float32],
                 start_sample: int, split: bool,
                 options: dict[str, object] | None = None) -> TranscribeRequest:
        request = TranscribeRequest(
            request_id=self._next_request, utterance_id=utterance_id,
            kind="partial" if kind == "partial" else "final", audio=audio,
            start_sample=start_sample, end_sample=start_sample + len(audio), split=split,
            options=dict(options or {}))
        self._next_request += 1
        return request

    def _translate(self, events: Sequence[SegmenterEvent], out: list[Output]) -> None:
        for ev in events:
            if isinstance(ev, UtteranceStarted):
                self._stabilizer.reset()
                self._partial_mark = self._segmenter.position
                # A partial still out belongs to the previous utterance: its answer is stale.
                self._partial_inflight = None
                out.append(SpeechStarted(ev.utterance_id, _seconds(ev.start_sample)))
            elif isinstance(ev, Segment):
                request = self._request(ev.utterance_id, "final", ev.audio, ev.start_sample,
                                        ev.split)
                if ev.speculative:
                    self._speculative[ev.utterance_id] = request
                else:
                    self._order.append(request.request_id)
                    out.append(TranscriptionStarted(ev.utterance_id, request.duration))
                out.append(request)
            elif isinstance(ev, SegmentRevoked):
                request = self._speculative.pop(ev.utterance_id)
                self._held.pop(request.request_id, None)
                out.append(CancelRequest(request.request_id))
            elif isinstance(ev, SegmentConfirmed):
                request = self._speculative.pop(ev.utterance_id)
                self._order.append(request.request_id)
                out.append(TranscriptionStarted(ev.utterance_id, request.duration))
                held = self._held.pop(request.request_id, None)
                if held is not None:
                    self._ready[request.request_id] = held
                    out.extend(self._release())
            elif isinstance(ev, UtteranceEnded):
                out.append(SpeechEnded(ev.utterance_id, _seconds(ev.start_sample),
                                       _seconds(ev.end_sample), ev.discarded))
