"""The pure speech pipeline: audio in, events and engine requests out.

``SpeechPipeline`` does no I/O, reads no clock and starts no thread (bring-your-own-I/O, as
h11 does for HTTP). The recorder's pipeline thread feeds it float32 mono 16 kHz audio of any
chunk size and routes what comes back:

- :class:`~harken.events.Event` objects go to the user;
- :class:`~harken.engine.base.TranscribeRequest` objects go to the engine, whose answers come
  back through :meth:`SpeechPipeline.on_result` / :meth:`SpeechPipeline.on_failed`;
- :class:`CancelRequest` asks the engine to drop a speculative final that speech made stale;
- :class:`ConfirmRequest` says that a speculative final stands (an engine host that holds
  early finals back may schedule it now);
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

Wake words (optional): a :class:`~harken.core.wake_router.WakeRouter` stands between the
segmenter and the rest: only the events of command utterances reach the partial scheduler
and the finals; the router sends wake checks and reports wake word events itself.

The pipeline composes segmenter -> optional wake router -> partial scheduler -> final order
(:class:`~harken.core.final_order.FinalOrder`).

Pauses (``VadConfig.pause_events``): the segmenter's silence inside an utterance becomes
:class:`~harken.events.PauseStarted` / :class:`~harken.events.PauseEnded`.

End of turn (``VadConfig.turn_detection="smart"``): the segmenter's own end waits
``max_silence_ms``; a :class:`~harken.core.turn.TurnPolicy` ends the utterance sooner from
the turn model's answer and the utterance's words (the early final's, once back).

Tests drive it by pushing numpy arrays, with a fake VAD and no engine at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ..config import RealtimeConfig, VadConfig, WakeConfig
from ..engine.base import DecodeHints, EngineOutput, TranscribeRequest
from ..errors import AudioFormatError, ConfigError
from ..events import (
    FinalPreview,
    FinalTranscript,
    PartialTranscript,
    PauseEnded,
    PauseStarted,
    SpeechEnded,
    SpeechStarted,
)
from ..turn.base import TurnModel
from ..units import FRAME_SAMPLES, SAMPLE_RATE
from ..vad.base import VoiceActivityDetector
from ..wake.base import PhraseMatcher, WakeWordDetector
from .final_order import FinalOrder
from .outputs import (
    CancelRequest,
    ConfirmRequest,
    FinalFailed,
    Output,
    final_transcript,
    seconds,
)
from .segmenter import (
    Segment,
    SegmentConfirmed,
    Segmenter,
    SegmenterEvent,
    SegmentKept,
    SegmentRevoked,
    SilenceBegan,
    SilenceEnded,
    UtteranceEnded,
    UtteranceStarted,
)
from .stabilizer import Stabilizer
from .turn import SMART_TAIL_MS, TurnPolicy, TurnSettings
from .wake_router import Lookback, WakeRouter

__all__ = ["CancelRequest", "ConfirmRequest", "FinalFailed", "Output", "SpeechPipeline"]


class _Frames(Protocol):
    """Where the pipeline pushes frames: the segmenter, or the wake router in front of it."""

    def push(self, frame: NDArray[np.float32], speech: bool
             ) -> Sequence[SegmenterEvent | Output]:
        """Take one frame and its VAD decision."""

    def force_start(self) -> Sequence[SegmenterEvent | Output]:
        """Start an utterance now."""

    def force_end(self) -> Sequence[SegmenterEvent | Output]:
        """End the open utterance now."""

    def end_turn(self) -> Sequence[SegmenterEvent | Output]:
        """End the open utterance now: its speaker finished (smart end of turn)."""


class SpeechPipeline:
    """VAD, segmentation, partial scheduling and request bookkeeping for one audio stream.

    Args:
        vad: a loaded detector, called on every frame of FRAME_SAMPLES samples.
        vad_config: segmentation settings.
        realtime: partial and early-final settings (defaults: both on).
        wake: a loaded wake word detector, or a phrase matcher; None: no wake word.
        wake_config: wake word timeout and activation delay (with ``wake``).
        turn: a loaded turn model; needed with ``vad_config.turn_detection="smart"``.

    Raises:
        ConfigError: smart turn detection without a turn model.
    """

    def __init__(self, vad: VoiceActivityDetector, vad_config: VadConfig | None = None,
                 realtime: RealtimeConfig | None = None, *,
                 wake: WakeWordDetector | PhraseMatcher | None = None,
                 wake_config: WakeConfig | None = None,
                 turn: TurnModel | None = None) -> None:
        self._vad = vad
        self._realtime = realtime or RealtimeConfig()
        vad_config = vad_config or VadConfig()
        self._turn: TurnPolicy | None = None
        self._turn_utterance = 0  # the utterance the policy's state is about
        tail: dict[str, int] = {}
        if vad_config.turn_detection == "smart":
            tail["tail_ms"] = SMART_TAIL_MS
            if turn is None:
                raise ConfigError("turn_detection='smart' needs a loaded turn model (turn=)")
            self._turn = TurnPolicy(TurnSettings.from_config(vad_config), turn)
            # The segmenter's own end is the longest wait; the policy ends turns sooner.
            vad_config = replace(vad_config, post_speech_silence_ms=vad_config.max_silence_ms)
        pieces = 0 if wake is not None else \
            self._realtime.pause_pieces_ms * SAMPLE_RATE // 1000
        self._segmenter = Segmenter(vad_config, early_final=self._realtime.early_final,
                                    piece_min_samples=pieces,
                                    pauses=vad_config.pause_events, **tail)
        self._pending = np.zeros(0, dtype=np.float32)
        self._next_request = 1
        self._stabilizer = Stabilizer(self._realtime.stable_agreement)
        self._partial_inflight: int | None = None
        self._partial_mark = 0
        self._partial_interval = self._realtime.partial_interval_ms * SAMPLE_RATE // 1000
        self._partial_min = self._realtime.partial_min_ms * SAMPLE_RATE // 1000
        self._stable_min = self._realtime.stable_min_ms * SAMPLE_RATE // 1000
        self._speaking_id = 0  # the last utterance whose start was reported
        self._order = FinalOrder()
        self._lookback = Lookback()
        self._wake: WakeRouter | None = None
        self._frames: _Frames = self._segmenter
        if wake is not None:
            self._wake = self._frames = WakeRouter(
                wake, wake_config or WakeConfig(), self._segmenter, order=self._order,
                make_request=self._segment_request, lookback=self._lookback)

    @property
    def position(self) -> int:
        """Samples consumed so far: the stream clock, at 16 kHz."""
        return self._segmenter.position + len(self._pending)

    @property
    def in_utterance(self) -> bool:
        """True while the person is speaking (an utterance is open)."""
        return self._segmenter.active

    def is_early(self, request: TranscribeRequest) -> bool:
        """True while ``request`` is its utterance's early final and speech may still make
        it stale; a :class:`ConfirmRequest` says it stands, a :class:`CancelRequest` that it
        does not.
        """
        return self._order.is_early(request)

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
            self._translate(self._frames.push(frame, bool(self._vad.is_speech(frame))), out)
            self._turn_step(out)
            self._maybe_partial(out)
        self._pending = samples[n_frames * FRAME_SAMPLES:].copy()
        return out

    def flush(self) -> list[Output]:
        """End of stream (or pause): close the open utterance and transcribe it."""
        out: list[Output] = []
        if len(self._pending) and self._segmenter.active:
            frame = np.zeros(FRAME_SAMPLES, dtype=np.float32)
            frame[:len(self._pending)] = self._pending
            self._translate(self._frames.push(frame, False), out)
        self._pending = np.zeros(0, dtype=np.float32)
        self._translate(self._frames.force_end(), out)
        return out

    def force_start(self) -> list[Output]:
        """Start an utterance now, whatever the VAD says; it lasts until :meth:`force_end`.

        A manual recording is a command even while waiting for a wake word.
        """
        out: list[Output] = []
        self._translate(self._frames.force_start(), out)
        return out

    def force_end(self) -> list[Output]:
        """End the open utterance now and transcribe it."""
        out: list[Output] = []
        self._translate(self._frames.force_end(), out)
        return out

    def wake_up(self) -> None:
        """Act as if the wake word was just spoken: speech that starts within
        ``WakeConfig.timeout_s`` is a command (no recording is forced). Without wake words
        every utterance is one already: nothing to do.
        """
        if self._wake is not None:
            self._wake.wake_up()

    def on_result(self, request: TranscribeRequest, output: EngineOutput,
                  compute_seconds: float = 0.0, attempts: int = 1) -> list[Output]:
        """Turn the engine's answer to ``request`` into events (times in stream seconds)."""
        if request.kind == "partial":
            return self._partial_result(request, output)
        wake = self._wake_check(request)
        if wake is not None:
            return wake.check_result(request, output, compute_seconds, attempts)
        answer = final_transcript(request, output, compute_seconds=compute_seconds,
                                  attempts=attempts)
        return self._answered(request, answer)

    def on_failed(self, request: TranscribeRequest, error: BaseException) -> list[Output]:
        """The engine gave up on ``request``."""
        if request.kind == "partial":
            if self._partial_inflight == request.request_id:
                self._partial_inflight = None
            return []
        wake = self._wake_check(request)
        if wake is not None:
            return wake.check_failed(request, error)
        return self._answered(request, FinalFailed(request, error))

    # ------------------------------------------------------------------ internals

    def _answered(self, request: TranscribeRequest,
                  answer: FinalTranscript | FinalFailed) -> list[Output]:
        """A final's answer: to the final order; an early final's words may end the turn."""
        early = self._order.is_early(request)
        out = self._order.answered(request, answer)
        if early and self._realtime.preview_finals and isinstance(answer, FinalTranscript):
            out.append(FinalPreview(answer.utterance_id, answer.text))
        if early and self._turn is not None:
            if isinstance(answer, FinalTranscript):
                self._turn.heard_final(answer.text)
            self._turn_step(out)
        return out

    def _turn_step(self, out: list[Output]) -> None:
        """Smart end of turn: end the open utterance if its pause is long enough now."""
        seg = self._segmenter
        turn = self._turn
        if turn is None or not seg.active:
            return
        if seg.utterance_id != self._turn_utterance:
            self._turn_utterance = seg.utterance_id
            turn.new_utterance()
        silence = seg.silence
        if silence == 0:
            turn.speech()
            return
        if turn.should_end(silence, seg.current_audio,
                           pending=self._order.awaiting(seg.utterance_id),
                           early_final=self._realtime.early_final):
            self._translate(self._frames.end_turn(), out)

    def _wake_check(self, request: TranscribeRequest) -> WakeRouter | None:
        """The wake router, when ``request`` is one of its wake checks."""
        if self._wake is not None and self._wake.is_check(request):
            return self._wake
        return None

    def _partial_result(self, request: TranscribeRequest,
                        output: EngineOutput) -> list[Output]:
        if self._partial_inflight == request.request_id:
            self._partial_inflight = None
        seg = self._segmenter
        if not seg.active or seg.utterance_id != request.utterance_id or \
                request.end_sample <= seg.current_start_sample:
            return []  # the utterance (or the piece it heard) ended: its final says the rest
        # A pass over the first moments of speech often mishears its first words, and
        # two such passes agree on the mistake: they are shown, but do not vote. Nor do
        # passes while an early final is out: it was given the stable text of that moment
        # as its prefix, and text shown as stable must stay the start of its answer.
        stable, unstable = self._stabilizer.update(
            output.text.strip(), commit=len(request.audio) >= self._stable_min and
            not seg.speculating)
        if self._turn is not None and self._turn_utterance == request.utterance_id:
            self._turn.heard_partial(output.text.strip())
        return [PartialTranscript(request.utterance_id, stable, unstable, output.language)]

    def _maybe_partial(self, out: list[Output]) -> None:
        seg = self._segmenter
        if (not self._realtime.partials or self._partial_inflight is not None
                or not seg.speaking or seg.speculating or seg.fading):
            return  # a partial started as the voice fades would hold up the early final
        if seg.utterance_id != self._speaking_id:
            return  # not a command: no partials while waiting for the wake word
        audio_len = seg.position - seg.current_start_sample
        if audio_len < self._partial_min or seg.position - self._partial_mark < \
                self._partial_interval:
            return
        audio = seg.current_audio()
        request = self._request(seg.utterance_id, "partial", audio, seg.current_start_sample,
                                split=False, hints=DecodeHints(
                                    beam_size=self._realtime.partial_beam_size,
                                    word_timestamps=False))
        self._partial_inflight = request.request_id
        self._partial_mark = seg.position
        out.append(request)

    def _segment_request(self, segment: Segment,
                         hints: DecodeHints | None) -> TranscribeRequest:
        """The final request for a whole (unsplit) segment: the wake router's requests."""
        return self._request(segment.utterance_id, "final", segment.audio,
                             segment.start_sample, split=False, hints=hints)

    def _request(self, utterance_id: int, kind: str, audio: NDArray[np.float32],
                 start_sample: int, split: bool,
                 hints: DecodeHints | None = None) -> TranscribeRequest:
        hints = hints or DecodeHints()
        if self._lookback.covers(start_sample):
            # A command running straight on from the wake word: keep its first syllables.
            audio = np.concatenate([self._lookback.audio, audio])
            start_sample -= len(self._lookback.audio)
            if kind != "partial":
                # Its audio starts inside the wake word; faster-whisper's own pass (timestamp
                # tokens) keeps the first word after such a fragment, where the fast pass
                # dropped it ("jarvis what time is it" -> "Time is it?").
                hints = replace(hints, quality=hints.quality or "standard")
        if kind != "partial" and hints.quality is None and self._realtime.final_quality:
            hints = replace(hints, quality=self._realtime.final_quality)
        request = TranscribeRequest(
            request_id=self._next_request, utterance_id=utterance_id,
            kind="partial" if kind == "partial" else "final", audio=audio,
            start_sample=start_sample, end_sample=start_sample + len(audio), split=split,
            hints=hints)
        self._next_request += 1
        return request

    def _translate(self, items: Sequence[SegmenterEvent | Output], out: list[Output]) -> None:
        """Turn segmenter events into events and requests; the wake router's outputs pass."""
        for ev in items:
            if isinstance(ev, UtteranceStarted):
                self._stabilizer.reset()
                self._speaking_id = ev.utterance_id
                self._partial_mark = self._segmenter.position
                # A partial still out belongs to the previous utterance: its answer is stale.
                self._partial_inflight = None
                out.append(SpeechStarted(ev.utterance_id, seconds(ev.start_sample)))
            elif isinstance(ev, Segment):
                stable = self._stabilizer.stable
                hints: DecodeHints | None = None
                if stable and self._realtime.stable_prefix:
                    hints = DecodeHints(prefix=stable)
                request = self._request(ev.utterance_id, "final", ev.audio, ev.start_sample,
                                        ev.split, hints)
                if ev.split:
                    # The stable text belonged to this piece; the rest starts afresh.
                    self._stabilizer.reset()
                if ev.speculative:
                    self._order.speculate(request)
                else:
                    out.append(self._order.commit(request))
                out.append(request)
            elif isinstance(ev, SegmentRevoked):
                out.append(self._order.revoke(ev.utterance_id))
            elif isinstance(ev, SegmentKept):
                # A finished piece of the utterance: a final like a split's; the stable
                # text belonged to it, the rest starts afresh.
                self._stabilizer.reset()
                out.extend(self._order.keep(ev.utterance_id))
            elif isinstance(ev, SegmentConfirmed):
                out.extend(self._order.confirm(ev.utterance_id))
            elif isinstance(ev, UtteranceEnded):
                out.append(SpeechEnded(ev.utterance_id, seconds(ev.start_sample),
                                       seconds(ev.end_sample), ev.discarded))
            elif isinstance(ev, SilenceBegan):
                out.append(PauseStarted(ev.utterance_id, seconds(ev.sample)))
            elif isinstance(ev, SilenceEnded):
                out.append(PauseEnded(ev.utterance_id, seconds(ev.sample), ev.resumed))
            else:
                out.append(ev)
