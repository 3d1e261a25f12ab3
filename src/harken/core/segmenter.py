"""Turns per-frame speech decisions into utterances (pure: no I/O, no clock, no threads).

Time is counted in samples at 16 kHz. The segmenter receives fixed frames with a speech
decision for each and returns what happened: an utterance started, ended (with its audio),
or was cut because it ran past the maximum length.

Rules, all in frames of :data:`~harken.vad.base.FRAME_SAMPLES` samples:

- start: ``start_frames`` consecutive speech frames; the utterance audio then begins
  ``pre_roll`` samples before the first of them, so the onset is never clipped;
- end: ``end_frames`` consecutive non-speech frames; the audio keeps a short tail of that
  silence (Whisper transcribes the last word better with some silence after it);
- discard: an utterance with fewer than ``min_frames`` speech frames ends with
  ``discarded=True`` and no audio to transcribe;
- split: at ``max_samples`` the audio is cut at the quietest frame of its last part and the
  first piece is handed out while the utterance goes on;
- early final (``early_final``): once the silence after speech reaches the kept tail, the
  audio the final would get is already complete, so it is handed out at once as a
  *speculative* segment; if speech resumes it is revoked, if the silence lasts it is confirmed
  (and no second segment is cut).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..config import SAMPLE_RATE, VadConfig
from ..vad.base import FRAME_SAMPLES

__all__ = ["Segment", "SegmentConfirmed", "SegmentRevoked", "Segmenter", "UtteranceEnded",
           "UtteranceStarted"]

_TAIL_MS = 250
"""Silence kept after the last speech frame, in ms (at most post_speech_silence_ms)."""


@dataclass(frozen=True)
class UtteranceStarted:
    """Speech began. ``start_sample`` includes the pre-roll."""

    utterance_id: int
    start_sample: int


@dataclass(frozen=True, eq=False)
class Segment:
    """Audio of an utterance (or of a piece of one, when ``split``) to transcribe."""

    utterance_id: int
    start_sample: int
    audio: NDArray[np.float32]
    split: bool
    speculative: bool = False
    """Cut early, during the silence: it becomes final only once SegmentConfirmed follows."""

    @property
    def end_sample(self) -> int:
        """Sample index just past the audio."""
        return self.start_sample + len(self.audio)


@dataclass(frozen=True)
class UtteranceEnded:
    """Speech ended. ``end_sample`` is the end of the last speech frame."""

    utterance_id: int
    start_sample: int
    end_sample: int
    discarded: bool


@dataclass(frozen=True)
class SegmentRevoked:
    """Speech resumed: the speculative segment of this utterance will not be the final."""

    utterance_id: int


@dataclass(frozen=True)
class SegmentConfirmed:
    """The silence lasted: the speculative segment of this utterance is its final audio."""

    utterance_id: int


SegmenterEvent = UtteranceStarted | Segment | UtteranceEnded | SegmentRevoked | SegmentConfirmed


def _frames(ms: float) -> int:
    return max(1, math.ceil(ms * SAMPLE_RATE / 1000 / FRAME_SAMPLES))


class Segmenter:
    """Groups speech frames into utterances. Not thread-safe: one stream, one thread."""

    def __init__(self, config: VadConfig, *, early_final: bool = False) -> None:
        self._early_final = early_final
        self._speculating = False
        self._start_frames = _frames(config.start_ms)
        self._end_frames = _frames(config.post_speech_silence_ms)
        self._min_frames = max(1, round(config.min_utterance_ms * SAMPLE_RATE / 1000
                                        / FRAME_SAMPLES))
        self._tail_frames = min(self._end_frames, _frames(_TAIL_MS))
        self._pre_roll_frames = math.ceil(config.pre_roll_ms * SAMPLE_RATE / 1000
                                          / FRAME_SAMPLES)
        self._max_frames = max(self._start_frames + 4,
                               int(config.max_utterance_s * SAMPLE_RATE) // FRAME_SAMPLES)
        # Frames that may become the beginning of an utterance: pre-roll plus the start run.
        self._recent: deque[NDArray[np.float32]] = deque(
            maxlen=self._pre_roll_frames + self._start_frames)
        self._position = 0  # samples judged so far
        self._run = 0  # consecutive speech frames while idle
        self._next_id = 1
        self._active = False
        self._manual = False
        self._utterance_id = 0
        self._start_sample = 0
        self._frames_audio: list[NDArray[np.float32]] = []
        self._speech: list[bool] = []
        self._speech_frames = 0
        self._silence_run = 0
        self._last_speech_end = 0

    @property
    def position(self) -> int:
        """Samples consumed so far (the stream clock)."""
        return self._position

    @property
    def active(self) -> bool:
        """True while an utterance is open."""
        return self._active

    @property
    def utterance_id(self) -> int:
        """Id of the open utterance, or of the last one when none is open (0 before any)."""
        return self._utterance_id

    @property
    def speaking(self) -> bool:
        """True while an utterance is open and its latest frame was speech."""
        return self._active and self._silence_run == 0

    @property
    def speculating(self) -> bool:
        """True while a speculative segment of the open utterance is outstanding."""
        return self._speculating

    def current_audio(self) -> NDArray[np.float32]:
        """Audio of the open utterance so far (empty when none is open)."""
        if not self._active or not self._frames_audio:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._frames_audio)

    @property
    def current_start_sample(self) -> int:
        """Stream position of the first sample of :meth:`current_audio`."""
        return self._start_sample

    def push(self, frame: NDArray[np.float32], is_speech: bool) -> list[SegmenterEvent]:
        """Take one frame of FRAME_SAMPLES samples and its speech decision."""
        events: list[SegmenterEvent] = []
        frame_start = self._position
        self._position += len(frame)
        if not self._active:
            self._recent.append(frame)
            self._run = self._run + 1 if is_speech else 0
            if self._run >= self._start_frames:
                self._open(frame_start + len(frame) - len(self._recent) * FRAME_SAMPLES, events)
                self._frames_audio = list(self._recent)
                self._speech = [False] * (len(self._recent) - self._run) + [True] * self._run
                self._speech_frames = self._run
                self._last_speech_end = self._position
                self._recent.clear()
                self._run = 0
            return events
        self._frames_audio.append(frame)
        self._speech.append(is_speech)
        if is_speech:
            self._speech_frames += 1
            self._silence_run = 0
            self._last_speech_end = self._position
            if self._speculating:
                self._speculating = False
                events.append(SegmentRevoked(self._utterance_id))
        else:
            self._silence_run += 1
        if not self._manual and self._silence_run >= self._end_frames:
            self._close(events)
        elif len(self._frames_audio) >= self._max_frames:
            if self._speculating:
                self._speculating = False
                events.append(SegmentRevoked(self._utterance_id))
            self._split(events)
        elif (self._early_final and not self._manual and not self._speculating
              and self._silence_run == self._tail_frames
              and self._speech_frames >= self._min_frames):
            # The final's audio is complete now: the rest of the silence is not kept.
            self._speculating = True
            events.append(Segment(self._utterance_id, self._start_sample,
                                  np.concatenate(self._frames_audio), split=False,
                                  speculative=True))
        return events

    def force_start(self) -> list[SegmenterEvent]:
        """Open an utterance now; it stays open until :meth:`force_end` (VAD end ignored)."""
        events: list[SegmenterEvent] = []
        if not self._active:
            self._open(self._position, events)
            self._frames_audio = []
            self._speech = []
            self._speech_frames = 0
            self._last_speech_end = self._position
            self._recent.clear()
            self._run = 0
        elif self._speculating:  # a manual utterance keeps all its audio: not the same cut
            self._speculating = False
            events.append(SegmentRevoked(self._utterance_id))
        self._manual = True
        return events

    def force_end(self) -> list[SegmenterEvent]:
        """Close the open utterance now (end of stream, pause, or a manual stop)."""
        events: list[SegmenterEvent] = []
        if self._active:
            if self._manual:
                # A manual recording ends where the user said, not at the last speech frame.
                self._last_speech_end = self._position
                self._speech_frames = max(self._speech_frames, len(self._frames_audio))
            self._close(events)
        self._manual = False
        return events

    def _open(self, start_sample: int, events: list[SegmenterEvent]) -> None:
        self._active = True
        self._utterance_id = self._next_id
        self._next_id += 1
        self._start_sample = max(0, start_sample)
        self._silence_run = 0
        events.append(UtteranceStarted(self._utterance_id, self._start_sample))

    def _close(self, events: list[SegmenterEvent]) -> None:
        keep = len(self._frames_audio) - max(0, self._silence_run - self._tail_frames)
        if self._manual:
            keep = len(self._frames_audio)
        discarded = self._speech_frames < self._min_frames or keep <= 0
        events.append(UtteranceEnded(self._utterance_id, self._start_sample,
                                     self._last_speech_end, discarded))
        if self._speculating:
            # Same audio as the speculative segment: the silence since is beyond the tail.
            self._speculating = False
            events.append(SegmentConfirmed(self._utterance_id))
        elif not discarded:
            audio = np.concatenate(self._frames_audio[:keep])
            events.append(Segment(self._utterance_id, self._start_sample, audio, split=False))
        self._active = False
        self._manual = False
        self._frames_audio = []
        self._speech = []
        self._speech_frames = 0
        self._silence_run = 0
        self._run = 0

    def _split(self, events: list[SegmenterEvent]) -> None:
        """Cut the open utterance at the quietest frame of its last third."""
        n = len(self._frames_audio)
        lo = max(1, (2 * n) // 3)
        energies = [float(np.mean(f * f)) for f in self._frames_audio[lo:n - 1]]
        speech = self._speech[lo:n - 1]
        quiet = [e + 1.0 if s else e for e, s in zip(energies, speech, strict=True)]
        cut = lo + int(np.argmin(quiet)) + 1 if quiet else n
        audio = np.concatenate(self._frames_audio[:cut])
        events.append(Segment(self._utterance_id, self._start_sample, audio, split=True))
        self._start_sample += len(audio)
        self._frames_audio = self._frames_audio[cut:]
        self._speech = self._speech[cut:]
        self._speech_frames = sum(self._speech)
