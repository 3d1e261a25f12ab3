"""Turns per-frame speech decisions into utterances (pure: no I/O, no clock, no threads).

Time is counted in samples at 16 kHz. The segmenter receives fixed frames with a speech
decision for each and returns what happened: an utterance started, ended (with its audio),
or was cut because it ran past the maximum length.

Rules, all in frames of :data:`~harken.vad.base.FRAME_SAMPLES` samples:

- start: ``start_frames`` consecutive speech frames; the utterance audio then begins
  ``pre_roll`` samples before the first of them, so the onset is never clipped;
- end: ``end_frames`` consecutive non-speech frames; the audio keeps a short tail of that
  silence (Whisper transcribes the last word better with some silence after it). Silence is
  counted from where the voice faded, not from the VAD's last speech frame: neural VADs
  keep saying "speech" for 100-250 ms after a speaker stops (Silero's state decays slowly),
  so when speech turns to silence, the trailing speech frames that are already as quiet as
  the background (RMS below the noise floor + ``_FADE_DB``; the floor is the 20th percentile
  level of the last ~100 non-speech frames that are not digital silence, at least
  ``_FLOOR_DB``) count as silence,
  up to ``_MAX_FADE_MS``. The audio of the final ends ``_TAIL_MS`` after the faded end
  but never less than ``_MIN_VAD_TAIL_MS`` after the VAD's last speech frame, so nothing the
  VAD heard as speech is cut;
- discard: an utterance with fewer than ``min_frames`` speech frames ends with
  ``discarded=True`` and no audio to transcribe;
- split: at ``max_samples`` the audio is cut at the quietest frame of its last part and the
  first piece is handed out while the utterance goes on;
- early final (``early_final``): once the silence after speech reaches the kept tail, the
  audio the final would get is already complete, so it is handed out at once as a
  *speculative* segment; if speech resumes it is revoked, if the silence lasts it is confirmed
  (and no second segment is cut);
- pause pieces (``piece_min_samples``): if speech resumes after a speculative segment of at
  least that many samples, the segment is kept (:class:`SegmentKept`) as a finished piece of
  the utterance, like a split, and the utterance goes on from where the VAD heard the voice
  stop: the segment's silent tail belongs to both pieces. The tail can hold the onset of
  the next word (a soft "m" the VAD calls silence); a rest cut at the segment's end would
  start inside that word, and Whisper drops a word it hears from its middle ("consider
  how | much there" came out as "consider how. there");
- pauses (``pauses``): when silence begins inside an utterance (the wait for the end of the
  turn starts) :class:`SilenceBegan` says where the voice faded; :class:`SilenceEnded` follows
  when speech resumes or, after the utterance's end, when the utterance ended. Off by default:
  nobody pays for events nobody reads.

It is one piece (over the ~400-line guide) because every rule above reads and moves the
same per-frame state (silence run, fade, speculation, pieces); split, the rules would share
mutable state across modules.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..config import VadConfig
from ..units import FRAME_SAMPLES, ms_to_frames, s_to_samples, samples_to_frames

__all__ = ["Segment", "SegmentConfirmed", "SegmentKept", "SegmentRevoked", "Segmenter",
           "SilenceBegan", "SilenceEnded", "UtteranceEnded", "UtteranceStarted"]

_TAIL_MS = 128
"""Silence kept after the end of speech, in ms (at most post_speech_silence_ms; the
``tail_ms`` argument of :class:`Segmenter`, which smart turns set shorter); the early
final is cut when the silence reaches it. 128 ms rather than 250: ``benchmarks/latency.py
--quick`` E2F p50 616 ms against 753 ms, the same WER against the truth (8.1%); the price is
more revoked speculative passes in pauses (14 against 6 of ~35 on the 20 test clips)."""
_MIN_VAD_TAIL_MS = 64
"""The final's audio reaches at least this far past the VAD's last speech frame, in ms."""
_LATE_SOUND_MS = 320
"""A sound louder than the background this soon after the cut still belongs to the final."""
_FADE_DB = 12.0
"""A trailing speech frame within this many dB of the noise floor counts as silence."""
_FLOOR_DB = -70.0
"""Lowest noise floor assumed, in dBFS (digital silence would be -inf)."""
_MAX_FADE_MS = 256
"""At most this much trailing "speech" is counted as silence, in ms."""
_FLOOR_HISTORY = 94
"""Non-speech frames (~3 s) the noise floor is estimated from."""
_MIN_FLOOR_FRAMES = 8
"""Non-speech frames needed before the floor is trusted."""
_VOICE_MARGIN_DB = 6.0
"""A faded frame is also at least this many dB below the utterance's median voice level."""


def frame_level_db(frame: NDArray[np.float32]) -> float:
    """RMS level of a frame in dBFS (full scale = 1.0); -120 for digital silence."""
    wide = frame.astype(np.float64)  # a dot product: a quarter of np.mean's time per frame
    power = float(wide @ wide) / len(frame) if len(frame) else 0.0
    return 10.0 * math.log10(max(power, 1e-12))


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, interpolated linearly between the
    two nearest ranks (as ``numpy.percentile``'s default); a few levels per call, where
    numpy's fixed cost per call would dominate.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = q / 100.0 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


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


@dataclass(frozen=True)
class SegmentKept:
    """Speech resumed after a pause: the speculative segment is a finished piece of the
    utterance (its audio is not part of the rest).
    """

    utterance_id: int


@dataclass(frozen=True)
class SilenceBegan:
    """Silence began inside the open utterance (not a manual one): the end of the turn is
    awaited. ``sample`` is where the voice faded, from where the silence is counted.
    """

    utterance_id: int
    sample: int


@dataclass(frozen=True)
class SilenceEnded:
    """The pause of :class:`SilenceBegan` is over: speech resumed at ``sample``
    (``resumed``), or the utterance ended (or turned manual) with the stream at ``sample``.
    """

    utterance_id: int
    sample: int
    resumed: bool


SegmenterEvent = (UtteranceStarted | Segment | UtteranceEnded | SegmentRevoked
                  | SegmentConfirmed | SegmentKept | SilenceBegan | SilenceEnded)


def _frames(ms: float) -> int:
    """Frames covering ``ms`` (rounded up, as :mod:`harken.units` rounds), at least one."""
    return max(1, ms_to_frames(ms))


class Segmenter:
    """Groups speech frames into utterances. Not thread-safe: one stream, one thread."""

    def __init__(self, config: VadConfig, *, early_final: bool = False,
                 piece_min_samples: int = 0, pauses: bool = False,
                 tail_ms: int = _TAIL_MS) -> None:
        self._early_final = early_final
        self._pauses = pauses
        self._paused = False  # a SilenceBegan is out and its SilenceEnded is not
        self._speculating = False
        self._piece_min = piece_min_samples
        self._spec_frames = 0  # frames of the outstanding speculative segment
        self._spec_silent = 0  # of them, the VAD's silence at its end (heard again if kept)
        self._start_frames = _frames(config.start_ms)
        self._end_frames = _frames(config.post_speech_silence_ms)
        self._min_frames = _frames(config.min_utterance_ms)
        self._tail_frames = min(self._end_frames, _frames(tail_ms))
        self._pre_roll_frames = ms_to_frames(config.pre_roll_ms)
        self._max_frames = max(self._start_frames + 4,
                               samples_to_frames(s_to_samples(config.max_utterance_s)))
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
        self._levels: list[float] = []  # dBFS of each frame in _frames_audio
        self._speech_frames = 0
        self._silence_run = 0
        self._last_speech_end = 0
        self._fade_frames = _frames(_MAX_FADE_MS) if _MAX_FADE_MS else 0
        self._min_vad_tail = min(self._end_frames, _frames(min(tail_ms, _MIN_VAD_TAIL_MS)))
        self._late_frames = _frames(_LATE_SOUND_MS)
        self._vad_silence = 0  # non-speech frames by the VAD's own word
        self._cut_frames: int | None = None  # where this silence's final audio ends
        self._cut_limit = _FLOOR_DB + _FADE_DB  # the background limit at that moment
        self._quiet_levels: deque[float] = deque(maxlen=_FLOOR_HISTORY)
        self._last_level = _FLOOR_DB  # dBFS of the latest frame

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
    def fading(self) -> bool:
        """True when the latest frame is as quiet as the background (see the module
        docstring), whatever the VAD said: the speaker may be stopping.
        """
        return self._last_level < self._background_limit()

    @property
    def silence(self) -> int:
        """Samples of silence since the voice faded in the open utterance; 0 while speaking,
        when none is open and in a manual recording.
        """
        if not self._active or self._manual:
            return 0
        return self._silence_run * FRAME_SAMPLES

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
        level = frame_level_db(frame)
        self._last_level = level
        if not is_speech and level > _FLOOR_DB:  # digital silence says nothing about the room
            self._quiet_levels.append(level)
        if not self._active:
            self._recent.append(frame)
            self._run = self._run + 1 if is_speech else 0
            if self._run >= self._start_frames:
                self._open(frame_start + len(frame) - len(self._recent) * FRAME_SAMPLES, events)
                self._frames_audio = list(self._recent)
                self._speech = [False] * (len(self._recent) - self._run) + [True] * self._run
                self._levels = [frame_level_db(f) for f in self._recent]
                self._speech_frames = self._run
                self._last_speech_end = self._position
                self._recent.clear()
                self._run = 0
            return events
        self._frames_audio.append(frame)
        self._speech.append(is_speech)
        self._levels.append(level)
        if is_speech:
            if self._paused:
                self._paused = False
                events.append(SilenceEnded(self._utterance_id, frame_start, resumed=True))
            self._speech_frames += 1
            self._silence_run = 0
            self._cut_frames = None
            self._last_speech_end = self._position
            if self._speculating:
                self._speculating = False
                if self._piece_min and self._spec_frames * FRAME_SAMPLES >= self._piece_min:
                    events.append(SegmentKept(self._utterance_id))
                    self._drop_frames(self._spec_frames - self._spec_silent)
                else:
                    events.append(SegmentRevoked(self._utterance_id))
        elif self._silence_run == 0 and not self._manual:
            self._silence_run = 1 + self._faded_frames()
            self._vad_silence = 1
            self._last_speech_end = self._position - self._silence_run * FRAME_SAMPLES
            if self._pauses:
                self._paused = True
                events.append(SilenceBegan(self._utterance_id, self._last_speech_end))
        else:
            self._silence_run += 1
            self._vad_silence += 1
        if (self._cut_frames is None and self._silence_run >= self._tail_frames
                and self._vad_silence >= self._min_vad_tail):
            # The final's audio ends here: a tail after the faded end, and never less than
            # _MIN_VAD_TAIL_MS after the VAD's own last speech frame (soft endings such as
            # the "s" of "times" are quiet but still speech).
            self._cut_frames = len(self._frames_audio)
            self._cut_limit = self._background_limit()  # before the late sound is heard
        if not self._manual and self._silence_run >= self._end_frames:
            self._close(events)
        elif len(self._frames_audio) >= self._max_frames:
            if self._speculating:
                self._speculating = False
                events.append(SegmentRevoked(self._utterance_id))
            self._split(events)
        elif (self._early_final and not self._manual and not self._speculating
              and self._cut_frames == len(self._frames_audio)
              and self._speech_frames >= self._min_frames):
            # The final's audio is complete now: the rest of the silence is not kept.
            self._speculating = True
            self._spec_frames = len(self._frames_audio)
            self._spec_silent = min(self._vad_silence, self._spec_frames)
            events.append(Segment(self._utterance_id, self._start_sample,
                                  np.concatenate(self._frames_audio), split=False,
                                  speculative=True))
        return events

    def _faded_frames(self) -> int:
        """How many of the speech frames just before this silence are as quiet as the
        background (see the module docstring); at least one speech frame is left.
        """
        if self._fade_frames == 0 or len(self._quiet_levels) < _MIN_FLOOR_FRAMES:
            return 0  # too little background heard to know its level
        n = len(self._speech) - 1  # the frame just pushed is the silent one
        # Never above the utterance's own voice level - _VOICE_MARGIN_DB (the median level
        # of its last ~2 s of speech frames): a loud "background" is the speaker.
        voiced = [level for level, speech in zip(self._levels[-64:-1], self._speech[-64:-1],
                                                 strict=True) if speech]
        limit = self._background_limit()
        if voiced:
            limit = min(limit, percentile(voiced, 50) - _VOICE_MARGIN_DB)
        faded = 0
        while (faded < self._fade_frames and n - faded - 1 >= 1
               and self._speech[n - faded - 1]
               and self._levels[n - faded - 1] < limit):
            faded += 1
        return faded

    def _background_limit(self) -> float:
        """Frames quieter than this (dBFS) sound like the background: the noise floor (20th
        percentile of recent non-speech frames once _MIN_FLOOR_FRAMES of them were heard, and
        at least _FLOOR_DB) + _FADE_DB.
        """
        floor = _FLOOR_DB
        if len(self._quiet_levels) >= _MIN_FLOOR_FRAMES:
            floor = max(percentile(self._quiet_levels, 20), floor)
        return floor + _FADE_DB

    def _keep_late_sound(self, cut: int) -> int:
        """Where the final's audio ends: at ``cut``, or later when a sound louder than the
        background follows within _LATE_SOUND_MS (a soft ending after a short gap, such as
        the "s" of "times", which the VAD may call silence), then _MIN_VAD_TAIL_MS more.
        """
        limit = self._cut_limit
        last = None
        for i in range(cut, min(len(self._frames_audio), cut + self._late_frames)):
            if self._levels[i] > limit:
                last = i
        if last is None:
            return cut
        return min(len(self._frames_audio), last + 1 + self._min_vad_tail)

    def force_start(self) -> list[SegmenterEvent]:
        """Open an utterance now; it stays open until :meth:`force_end` (VAD end ignored)."""
        events: list[SegmenterEvent] = []
        if not self._active:
            self._open(self._position, events)
            self._frames_audio = []
            self._speech = []
            self._levels = []
            self._speech_frames = 0
            self._last_speech_end = self._position
            self._recent.clear()
            self._run = 0
        else:
            if self._speculating:  # a manual utterance keeps all its audio: not the same cut
                self._speculating = False
                events.append(SegmentRevoked(self._utterance_id))
            self._end_pause(events)  # a manual recording awaits no end of turn
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

    def end_turn(self) -> list[SegmenterEvent]:
        """End the open utterance now because its speaker finished (smart end of turn).

        Only in a pause (:attr:`silence` > 0); the audio is cut as at the normal end.
        """
        events: list[SegmenterEvent] = []
        if self.silence > 0:
            self._close(events)
        return events

    def _open(self, start_sample: int, events: list[SegmenterEvent]) -> None:
        self._active = True
        self._utterance_id = self._next_id
        self._next_id += 1
        self._start_sample = max(0, start_sample)
        self._silence_run = 0
        self._cut_frames = None
        events.append(UtteranceStarted(self._utterance_id, self._start_sample))

    def _close(self, events: list[SegmenterEvent]) -> None:
        keep = len(self._frames_audio)
        if not self._manual and self._cut_frames is not None:
            keep = self._keep_late_sound(self._cut_frames)
        discarded = self._speech_frames < self._min_frames or keep <= 0
        events.append(UtteranceEnded(self._utterance_id, self._start_sample,
                                     self._last_speech_end, discarded))
        self._end_pause(events)  # right after the end, as RealtimeSTT ends turn detection
        if self._speculating:
            self._speculating = False
            if keep == self._cut_frames:
                # Same audio as the speculative segment: the silence since is beyond the tail.
                events.append(SegmentConfirmed(self._utterance_id))
                discarded = True  # nothing more to hand out
            else:  # a late soft sound belongs to it: transcribe the longer audio instead
                events.append(SegmentRevoked(self._utterance_id))
        if not discarded:
            audio = np.concatenate(self._frames_audio[:keep])
            events.append(Segment(self._utterance_id, self._start_sample, audio, split=False))
        self._active = False
        self._manual = False
        self._frames_audio = []
        self._speech = []
        self._levels = []
        self._speech_frames = 0
        self._silence_run = 0
        self._cut_frames = None
        self._run = 0

    def _end_pause(self, events: list[SegmenterEvent]) -> None:
        """Close an open pause without speech (the utterance ends or turns manual)."""
        if self._paused:
            self._paused = False
            events.append(SilenceEnded(self._utterance_id, self._position, resumed=False))

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
        self._drop_frames(cut)

    def _drop_frames(self, cut: int) -> None:
        """The first ``cut`` frames were handed out as a piece: the utterance goes on after."""
        self._start_sample += sum(len(f) for f in self._frames_audio[:cut])
        self._cut_frames = None
        self._frames_audio = self._frames_audio[cut:]
        self._speech = self._speech[cut:]
        self._levels = self._levels[cut:]
        self._speech_frames = sum(self._speech)
