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

Wake words (optional): a :class:`~harken.wake.gate.WakeGate` decides which utterances are
commands. Utterances heard while waiting for the wake word produce no SpeechStarted,
partials or finals. A frame detector (Porcupine, openWakeWord) hears every frame, and its
hits count while waiting; on a hit the utterance holding the wake word is dropped and the
segmenter starts afresh, so the command's pre-roll does not reach back into the wake word;
a command that starts right at the hit (speech running straight on) gets
``_WAKE_LOOKBACK_MS`` of audio from before it, covering the detector's latency. The phrase
backend sends each plausible utterance as a wake check (a ``final`` request with the
phrases as hotwords) and the gate matches its text; the text after the phrase, or the next
utterance, is the command.

Tests drive it by pushing numpy arrays, with a fake VAD and no engine at all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ..config import RealtimeConfig, VadConfig, WakeConfig
from ..engine.base import DecodeHints, EngineOutput, TranscribeRequest
from ..errors import AudioFormatError
from ..events import (
    ErrorEvent,
    Event,
    FinalTranscript,
    PartialTranscript,
    SpeechEnded,
    SpeechStarted,
    TranscriptionStarted,
    WakeWordDetected,
    WakeWordTimeout,
    WakeWordWaiting,
    Word,
)
from ..units import FRAME_SAMPLES, SAMPLE_RATE
from ..vad.base import VoiceActivityDetector
from ..wake.base import WakeWordDetector
from ..wake.gate import (
    CheckDropped,
    CommandText,
    GateEvent,
    Route,
    WaitingStarted,
    WakeDetected,
    WakeGate,
    WakeTimedOut,
)
from ..wake.phrase import PhraseWakeWord
from .segmenter import (
    Segment,
    SegmentConfirmed,
    Segmenter,
    SegmenterEvent,
    SegmentKept,
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

_WAKE_LOOKBACK_MS = 250
"""A frame detector reports a wake word some 100-300 ms after it ends; speech running
straight on ("jarvis what time is it") has begun by then. A command that starts right at
the hit gets this much audio from before the hit, in ms: measured with Porcupine on
espeak-ng speech, 0 ms lost "what", 250 ms kept it without bringing back "jarvis"."""


def _seconds(samples: int) -> float:
    return samples / SAMPLE_RATE


class SpeechPipeline:
    """VAD, segmentation, partial scheduling and request bookkeeping for one audio stream.

    Args:
        vad: a loaded detector, called on every frame of FRAME_SAMPLES samples.
        config: segmentation settings.
        realtime: partial and early-final settings (defaults: both on).
        wake: a loaded wake word detector, or the phrase backend; None: no wake word.
        wake_config: wake word timeout and activation delay (with ``wake``).
    """

    def __init__(self, vad: VoiceActivityDetector, config: VadConfig | None = None,
                 realtime: RealtimeConfig | None = None, *,
                 wake: WakeWordDetector | PhraseWakeWord | None = None,
                 wake_config: WakeConfig | None = None) -> None:
        self._vad = vad
        self._realtime = realtime or RealtimeConfig()
        pieces = 0 if wake is not None else \
            self._realtime.pause_pieces_ms * SAMPLE_RATE // 1000
        self._segmenter = Segmenter(config or VadConfig(),
                                    early_final=self._realtime.early_final,
                                    piece_min_samples=pieces)
        self._pieces: set[int] = set()  # speculative finals kept as pieces (split=True)
        self._pending = np.zeros(0, dtype=np.float32)
        self._next_request = 1
        self._stabilizer = Stabilizer(self._realtime.stable_agreement)
        self._partial_inflight: int | None = None
        self._partial_mark = 0
        self._partial_interval = self._realtime.partial_interval_ms * SAMPLE_RATE // 1000
        self._partial_min = self._realtime.partial_min_ms * SAMPLE_RATE // 1000
        self._stable_min = self._realtime.stable_min_ms * SAMPLE_RATE // 1000
        self._speculative: dict[int, TranscribeRequest] = {}  # utterance id -> request
        self._held: dict[int, Output] = {}  # answers to unconfirmed speculative requests
        self._order: deque[int] = deque()  # final request ids, in utterance order
        self._ready: dict[int, Output] = {}  # answered finals waiting for earlier ones
        # Wake words
        wake_cfg = wake_config or WakeConfig()
        self._phrase: PhraseWakeWord | None = None
        self._detector: WakeWordDetector | None = None
        if isinstance(wake, PhraseWakeWord):
            self._phrase = wake
        elif wake is not None:
            self._detector = wake
        self._gate = None if wake is None else WakeGate(
            timeout_samples=int(wake_cfg.timeout_s * SAMPLE_RATE), phrase=self._phrase)
        self._listen_first = int(wake_cfg.activation_delay_s * SAMPLE_RATE)
        self._gate_started = False
        self._command: dict[int, bool] = {}  # open/last utterance id -> is a command
        self._forcing = False  # force_start(): a manual recording is always a command
        self._voiced = 0  # speech samples of the open utterance
        self._held_segment: dict[int, Segment] = {}  # speculative audio of non-commands
        self._routes: dict[int, Route] = {}
        self._checks: dict[int, int] = {}  # wake check request id -> utterance id
        self._check_answers: dict[int, tuple[TranscribeRequest, EngineOutput, float, int]] = {}
        self._recent_frames: deque[NDArray[np.float32]] = deque(
            maxlen=-(-_WAKE_LOOKBACK_MS * SAMPLE_RATE // 1000 // FRAME_SAMPLES))
        self._lead_at = -1  # where the last hit restarted the segmenter
        self._lead = np.zeros(0, dtype=np.float32)  # audio just before it

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
        if self._gate is not None and not self._gate_started:
            self._gate_started = True
            self._gate_events(self._gate.start(self.position, self._listen_first), out)
        for i in range(n_frames):
            frame = samples[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            speech = bool(self._vad.is_speech(frame))
            self._translate(self._segmenter.push(frame, speech), out)
            if self._gate is not None:
                if speech and self._segmenter.active:
                    self._voiced += FRAME_SAMPLES
                self._wake_frame(frame, out)
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
        """Start an utterance now, whatever the VAD says; it lasts until :meth:`force_end`.

        A manual recording is a command even while waiting for a wake word."""
        out: list[Output] = []
        self._forcing = True
        try:
            self._translate(self._segmenter.force_start(), out)
        finally:
            self._forcing = False
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
        if request.request_id in self._checks:
            return self._check_result(request, output, compute_seconds, attempts)
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
            split=request.split or request.request_id in self._pieces,
        )
        self._pieces.discard(request.request_id)
        return self._answered(request, final)

    def on_failed(self, request: TranscribeRequest, error: BaseException) -> list[Output]:
        """The engine gave up on ``request``."""
        if request.kind == "partial":
            if self._partial_inflight == request.request_id:
                self._partial_inflight = None
            return []
        uid = self._checks.pop(request.request_id, None)
        if uid is not None and self._gate is not None:
            out: list[Output] = [ErrorEvent(error, fatal=False, where="engine")]
            self._gate_events(self._gate.check_result(uid, None), out)
            return out
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
        if not seg.active or seg.utterance_id != request.utterance_id or \
                request.end_sample <= seg.current_start_sample:
            return []  # the utterance (or the piece it heard) ended: its final says the rest
        # A pass over the first moments of speech often mishears its first words, and
        # two such passes agree on the mistake: they are shown, but do not vote.
        stable, unstable = self._stabilizer.update(
            output.text.strip(), commit=len(request.audio) >= self._stable_min)
        return [PartialTranscript(request.utterance_id, stable, unstable)]

    def _maybe_partial(self, out: list[Output]) -> None:
        seg = self._segmenter
        if (not self._realtime.partials or self._partial_inflight is not None
                or not seg.speaking or seg.speculating or seg.fading):
            return  # a partial started as the voice fades would hold up the early final
        if self._gate is not None and not self._command.get(seg.utterance_id, False):
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

    def _request(self, utterance_id: int, kind: str, audio: NDArray[np.float32],
                 start_sample: int, split: bool,
                 hints: DecodeHints | None = None) -> TranscribeRequest:
        hints = hints or DecodeHints()
        if start_sample == self._lead_at and len(self._lead):
            # A command running straight on from the wake word: keep its first syllables.
            audio = np.concatenate([self._lead, audio])
            start_sample -= len(self._lead)
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

    def _translate(self, events: Sequence[SegmenterEvent], out: list[Output]) -> None:
        for ev in events:
            if self._gate is not None and self._wake_filter(ev, out):
                continue
            if isinstance(ev, UtteranceStarted):
                self._stabilizer.reset()
                self._partial_mark = self._segmenter.position
                # A partial still out belongs to the previous utterance: its answer is stale.
                self._partial_inflight = None
                out.append(SpeechStarted(ev.utterance_id, _seconds(ev.start_sample)))
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
                    self._speculative[ev.utterance_id] = request
                else:
                    self._order.append(request.request_id)
                    out.append(TranscriptionStarted(ev.utterance_id, request.duration))
                out.append(request)
            elif isinstance(ev, SegmentRevoked):
                request = self._speculative.pop(ev.utterance_id)
                self._held.pop(request.request_id, None)
                out.append(CancelRequest(request.request_id))
            elif isinstance(ev, SegmentKept):
                # A finished piece of the utterance: a final like a split's; the stable
                # text belonged to it, the rest starts afresh.
                request = self._speculative.pop(ev.utterance_id)
                self._stabilizer.reset()
                self._pieces.add(request.request_id)
                self._order.append(request.request_id)
                out.append(TranscriptionStarted(ev.utterance_id, request.duration))
                held = self._held.pop(request.request_id, None)
                if isinstance(held, FinalTranscript):
                    held = replace(held, split=True)
                    self._pieces.discard(request.request_id)
                if held is not None:
                    self._ready[request.request_id] = held
                    out.extend(self._release())
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
                if self._gate is not None and self._gate.is_command(ev.utterance_id):
                    _, gate_events = self._gate.utterance_ended(
                        ev.utterance_id, ev.start_sample, ev.end_sample, self._voiced,
                        ev.discarded)
                    self._gate_events(gate_events, out)

    # ------------------------------------------------------------------ wake words

    def _wake_filter(self, ev: SegmenterEvent, out: list[Output]) -> bool:
        """Handle a segmenter event of an utterance that is not a command; True if handled."""
        gate = self._gate
        if gate is None:
            return False
        uid = ev.utterance_id
        if isinstance(ev, UtteranceStarted):
            self._command = {}  # events of earlier utterances are all out by now
            self._voiced = 0
            command = self._forcing or gate.speech_started(uid, ev.start_sample)
            self._command[uid] = command
            return not command
        if self._command.get(uid, False):
            return False
        if isinstance(ev, Segment):
            if ev.speculative:
                self._held_segment[uid] = ev
            elif not ev.split:  # a piece of an over-long utterance is no wake check
                self._act(self._routes.pop(uid, "drop"), ev, out)
        elif isinstance(ev, SegmentRevoked):
            self._held_segment.pop(uid, None)
        elif isinstance(ev, SegmentConfirmed):
            held = self._held_segment.pop(uid, None)
            route = self._routes.pop(uid, "drop")
            if held is not None:
                self._act(route, held, out)
        elif isinstance(ev, UtteranceEnded):
            route, gate_events = gate.utterance_ended(uid, ev.start_sample, ev.end_sample,
                                                      self._voiced, ev.discarded)
            if not ev.discarded:
                self._routes[uid] = route
            self._gate_events(gate_events, out)
        return True

    def _act(self, route: Route, segment: Segment, out: list[Output]) -> None:
        """Send a non-command utterance's audio where the gate routed it."""
        if route == "final":  # it began while a wake check in flight found the wake word
            request = self._request(segment.utterance_id, "final", segment.audio,
                                    segment.start_sample, split=False)
            self._order.append(request.request_id)
            out.append(TranscriptionStarted(segment.utterance_id, request.duration))
            out.append(request)
        elif route == "check" and self._phrase is not None:
            request = self._request(segment.utterance_id, "final", segment.audio,
                                    segment.start_sample, split=False,
                                    hints=self._phrase.request_hints())
            self._checks[request.request_id] = segment.utterance_id
            out.append(request)

    def _wake_frame(self, frame: NDArray[np.float32], out: list[Output]) -> None:
        """Run the frame detector; time out a wake word nobody followed."""
        gate = self._gate
        if gate is None:
            return
        position = self._segmenter.position
        if self._detector is not None:
            # The detector hears the whole stream (it is built for continuous audio; gaps
            # made it miss wake words), but only counts while the gate waits.
            word = self._detector.process(frame)
            self._recent_frames.append(frame)
            if word is not None and gate.detecting:
                events = gate.hit(word, position)
                if events:
                    self._restart_after_wake()
                    self._lead_at = position
                    self._lead = np.concatenate(list(self._recent_frames))
                    self._gate_events(events, out)
        self._gate_events(gate.advance(position), out)

    def _restart_after_wake(self) -> None:
        """Drop the utterance holding the wake word; the command's audio starts from here."""
        seg = self._segmenter
        if seg.active:
            uid = seg.utterance_id
            seg.force_end()  # its events are dropped: the wake word is not transcribed
            self._held_segment.pop(uid, None)
            self._routes.pop(uid, None)
        else:
            # Empty the pre-roll: it holds the wake word. A manual utterance with no audio
            # is discarded without a segment.
            seg.force_start()
            seg.force_end()

    def _check_result(self, request: TranscribeRequest, output: EngineOutput,
                      compute_seconds: float, attempts: int) -> list[Output]:
        uid = self._checks.pop(request.request_id)
        out: list[Output] = []
        if self._gate is None:
            return out
        self._check_answers[uid] = (request, output, compute_seconds, attempts)
        word_ends = [request.start_sample + int(round(w.end * SAMPLE_RATE))
                     for w in output.words]
        self._gate_events(self._gate.check_result(uid, output.text, word_ends), out)
        return out

    def _gate_events(self, events: Sequence[GateEvent], out: list[Output]) -> None:
        for ev in events:
            if isinstance(ev, WaitingStarted):
                out.append(WakeWordWaiting(_seconds(ev.sample)))
            elif isinstance(ev, WakeDetected):
                out.append(WakeWordDetected(ev.word, _seconds(ev.sample)))
            elif isinstance(ev, WakeTimedOut):
                out.append(WakeWordTimeout(_seconds(ev.sample)))
            elif isinstance(ev, CommandText):
                answer = self._check_answers.pop(ev.utterance_id, None)
                if answer is not None:
                    out.append(self._command_final(ev, *answer))
            elif isinstance(ev, CheckDropped):
                self._check_answers.pop(ev.utterance_id, None)

    def _command_final(self, command: CommandText, request: TranscribeRequest,
                       output: EngineOutput, compute_seconds: float,
                       attempts: int) -> FinalTranscript:
        """The final of a command found in a wake check (after the phrase, or all of it)."""
        offset = _seconds(request.start_sample)
        words = tuple(Word(round(offset + w.start, 3), round(offset + w.end, 3), w.text,
                           w.probability) for w in output.words[command.skip_words:])
        start = words[0].start if words and command.skip_words else offset
        return FinalTranscript(
            utterance_id=command.utterance_id, text=command.text, start=start,
            end=_seconds(request.end_sample), language=output.language,
            language_probability=output.language_probability, words=words,
            compute_seconds=compute_seconds, attempts=attempts)
