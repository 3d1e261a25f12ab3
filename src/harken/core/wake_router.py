"""Wake word routing: which utterances are commands, and what happens to the others.

:class:`WakeRouter` stands between the segmenter and the rest of the pipeline when wake
words are on. The pipeline gives it each frame; it pushes the frame into the segmenter and
returns the segmenter events of *command* utterances (for the pipeline to turn into speech
events, partials and finals) mixed with its own outputs: wake word events, wake checks, and
finals it sent itself. Utterances heard while waiting for the wake word produce no
SpeechStarted, partials or finals. Pure: no I/O, no clock, no threads.

A :class:`~harken.wake.gate.WakeGate` decides. Two kinds of backend feed it:

- a frame detector (Porcupine, openWakeWord) hears every frame, and its hits count while
  the gate waits; on a hit the utterance holding the wake word is dropped and the segmenter
  starts afresh, so the command's pre-roll does not reach back into the wake word. A command
  that starts right at the hit (speech running straight on) gets ``_WAKE_LOOKBACK_MS`` of
  audio from before it (the :class:`Lookback`), covering the detector's latency;
- a phrase matcher sends each plausible utterance as a wake check (a ``final`` request with
  the phrases as hints) and the gate matches its text; the text after the phrase, or the
  next utterance, is the command.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..config import WakeConfig
from ..engine.base import DecodeHints, EngineOutput, TranscribeRequest
from ..events import ErrorEvent, WakeWordDetected, WakeWordTimeout, WakeWordWaiting
from ..units import FRAME_SAMPLES, SAMPLE_RATE
from ..wake.base import PhraseMatcher, WakeWordDetector
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
from .final_order import FinalOrder
from .outputs import Output, final_transcript, seconds
from .segmenter import (
    Segment,
    SegmentConfirmed,
    Segmenter,
    SegmenterEvent,
    SegmentRevoked,
    UtteranceEnded,
    UtteranceStarted,
)

__all__ = ["Lookback", "RequestMaker", "WakeRouter"]

_WAKE_LOOKBACK_MS = 250
"""A frame detector reports a wake word some 100-300 ms after it ends; speech running
straight on ("jarvis what time is it") has begun by then. A command that starts right at
the hit gets this much audio from before the hit, in ms: measured with Porcupine on
espeak-ng speech, 0 ms lost "what", 250 ms kept it without bringing back "jarvis"."""

RequestMaker = Callable[[Segment, DecodeHints | None], TranscribeRequest]
"""Makes the final request for a whole segment (the pipeline numbers requests and adds the
:class:`Lookback`), with decode hints or None."""


@dataclass
class Lookback:
    """Audio from just before the last wake word hit, for a command that starts at the hit."""

    at: int = -1
    """Stream position (samples at 16 kHz) where the hit restarted the segmenter."""
    audio: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    """The audio just before ``at``, up to ``_WAKE_LOOKBACK_MS`` of it."""

    def covers(self, start_sample: int) -> bool:
        """True when audio starting at ``start_sample`` began right at the hit."""
        return start_sample == self.at and len(self.audio) > 0


class WakeRouter:
    """Routes one stream's utterances by a wake word gate. Not thread-safe: one stream.

    Args:
        wake: a loaded frame detector, or a phrase matcher.
        config: wake word timeout and activation delay.
        segmenter: the pipeline's segmenter; the router pushes frames into it and restarts
            it after a wake word hit.
        order: the pipeline's final order; finals the router sends itself are committed to it.
        make_request: makes the request for a segment the router sends to the engine.
        lookback: where the router leaves the audio before a hit for the pipeline's requests.
    """

    def __init__(self, wake: WakeWordDetector | PhraseMatcher, config: WakeConfig,
                 segmenter: Segmenter, *, order: FinalOrder, make_request: RequestMaker,
                 lookback: Lookback) -> None:
        self._detector: WakeWordDetector | None = None
        self._phrase: PhraseMatcher | None = None
        if isinstance(wake, WakeWordDetector):
            self._detector = wake
        else:
            self._phrase = wake
        self._gate = WakeGate(timeout_samples=int(config.timeout_s * SAMPLE_RATE),
                              phrase=self._phrase)
        self._listen_first = int(config.activation_delay_s * SAMPLE_RATE)
        self._segmenter = segmenter
        self._order = order
        self._make_request = make_request
        self._lookback = lookback
        self._started = False
        self._command: dict[int, bool] = {}  # open/last utterance id -> is a command
        self._forcing = False  # force_start(): a manual recording is always a command
        self._voiced = 0  # speech samples of the open utterance
        self._held_segment: dict[int, Segment] = {}  # speculative audio of non-commands
        self._routes: dict[int, Route] = {}
        self._checks: dict[int, int] = {}  # wake check request id -> utterance id
        self._check_answers: dict[int, tuple[TranscribeRequest, EngineOutput, float, int]] = {}
        self._recent_frames: deque[NDArray[np.float32]] = deque(
            maxlen=-(-_WAKE_LOOKBACK_MS * SAMPLE_RATE // 1000 // FRAME_SAMPLES))

    # ------------------------------------------------------------------ the segmenter's face

    def push(self, frame: NDArray[np.float32], speech: bool
             ) -> list[SegmenterEvent | Output]:
        """Push one frame and its VAD decision; run the frame detector on it."""
        out: list[SegmenterEvent | Output] = []
        if not self._started:
            self._started = True
            self._gate_events(self._gate.start(self._segmenter.position, self._listen_first),
                              out)
        self._route(self._segmenter.push(frame, speech), out)
        if speech and self._segmenter.active:
            self._voiced += FRAME_SAMPLES
        self._hear(frame, out)
        return out

    def force_start(self) -> list[SegmenterEvent | Output]:
        """Start an utterance now: a manual recording is a command even while waiting."""
        out: list[SegmenterEvent | Output] = []
        self._forcing = True
        try:
            self._route(self._segmenter.force_start(), out)
        finally:
            self._forcing = False
        return out

    def force_end(self) -> list[SegmenterEvent | Output]:
        """End the open utterance now."""
        out: list[SegmenterEvent | Output] = []
        self._route(self._segmenter.force_end(), out)
        return out

    def wake_up(self) -> None:
        """Listen for a command now, as if the wake word had just been heard; the utterance
        open now (if any) stays what it was.
        """
        self._gate.wake(self._segmenter.position)

    def end_turn(self) -> list[SegmenterEvent | Output]:
        """End the open utterance now: its speaker finished (smart end of turn)."""
        out: list[SegmenterEvent | Output] = []
        self._route(self._segmenter.end_turn(), out)
        return out

    # ------------------------------------------------------------------ wake checks

    def is_check(self, request: TranscribeRequest) -> bool:
        """True when ``request`` is a wake check this router sent."""
        return request.request_id in self._checks

    def check_result(self, request: TranscribeRequest, output: EngineOutput,
                     compute_seconds: float, attempts: int) -> list[Output]:
        """The engine's text for a wake check: wake word events, maybe a command's final."""
        uid = self._checks.pop(request.request_id)
        out: list[Output] = []
        self._check_answers[uid] = (request, output, compute_seconds, attempts)
        word_ends = [request.start_sample + int(round(w.end * SAMPLE_RATE))
                     for w in output.words]
        self._gate_events(self._gate.check_result(uid, output.text, word_ends), out)
        return out

    def check_failed(self, request: TranscribeRequest, error: BaseException) -> list[Output]:
        """A wake check could not be transcribed: report it; the gate counts it as no match."""
        uid = self._checks.pop(request.request_id)
        out: list[Output] = [ErrorEvent(error, fatal=False, where="engine")]
        self._gate_events(self._gate.check_result(uid, None), out)
        return out

    # ------------------------------------------------------------------ internals

    def _route(self, events: Sequence[SegmenterEvent],
               out: list[SegmenterEvent | Output]) -> None:
        for ev in events:
            if self._not_a_command(ev, out):
                continue
            out.append(ev)
            if isinstance(ev, UtteranceEnded) and self._gate.is_command(ev.utterance_id):
                _, gate_events = self._gate.utterance_ended(
                    ev.utterance_id, ev.start_sample, ev.end_sample, self._voiced, ev.discarded)
                self._gate_events(gate_events, out)

    def _not_a_command(self, ev: SegmenterEvent, out: list[SegmenterEvent | Output]) -> bool:
        """Handle a segmenter event of an utterance that is not a command; True if handled."""
        gate = self._gate
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

    def _act(self, route: Route, segment: Segment, out: list[SegmenterEvent | Output]) -> None:
        """Send a non-command utterance's audio where the gate routed it."""
        if route == "final":  # it began while a wake check in flight found the wake word
            request = self._make_request(segment, None)
            out.append(self._order.commit(request))
            out.append(request)
        elif route == "check" and self._phrase is not None:
            request = self._make_request(segment, self._phrase.request_hints())
            self._checks[request.request_id] = segment.utterance_id
            out.append(request)

    def _hear(self, frame: NDArray[np.float32], out: list[SegmenterEvent | Output]) -> None:
        """Run the frame detector; time out a wake word nobody followed."""
        gate = self._gate
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
                    self._lookback.at = position
                    self._lookback.audio = np.concatenate(list(self._recent_frames))
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

    def _gate_events(self, events: Sequence[GateEvent],
                     out: list[SegmenterEvent | Output] | list[Output]) -> None:
        for ev in events:
            if isinstance(ev, WaitingStarted):
                out.append(WakeWordWaiting(seconds(ev.sample)))
            elif isinstance(ev, WakeDetected):
                out.append(WakeWordDetected(ev.word, seconds(ev.sample)))
            elif isinstance(ev, WakeTimedOut):
                out.append(WakeWordTimeout(seconds(ev.sample)))
            elif isinstance(ev, CommandText):
                answer = self._check_answers.pop(ev.utterance_id, None)
                if answer is not None:
                    request, output, compute_seconds, attempts = answer
                    out.append(final_transcript(
                        request, output, compute_seconds=compute_seconds, attempts=attempts,
                        text=ev.text, skip_words=ev.skip_words))
            elif isinstance(ev, CheckDropped):
                self._check_answers.pop(ev.utterance_id, None)
