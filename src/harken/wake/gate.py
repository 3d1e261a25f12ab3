"""The wake word gate: a pure, sample-clocked state machine (no I/O, no clock, no threads).

States: ``WAITING`` (for a wake word) and ``LISTENING`` (the next utterance is a command).
The pipeline thread feeds it what the VAD segmenter and the wake word backend found, each
stamped with a stream position in samples at 16 kHz, and routes utterances by its answers:

- ``WAITING`` -> ``LISTENING`` on a wake word: a frame detector's hit (:meth:`WakeGate.hit`,
  Porcupine, openWakeWord), or, for the phrase backend, a wake check whose text starts with
  the phrase (:meth:`WakeGate.check_result`). When text follows the phrase in the same
  utterance ("jarvis what time is it"), that text is the command and the gate stays waiting.
- ``LISTENING`` -> ``WAITING`` when the command utterance ends (as RealtimeSTT does), or
  after ``timeout_samples`` with no speech start (:class:`WakeTimedOut`).

Phrase mode is asynchronous: a wake check is a transcription in flight while audio goes on,
so utterances that start before earlier checks are answered are undecided. They are sent as
wake checks too (a wake check is a full transcription), and results are resolved strictly in
utterance order, replaying the state machine at each utterance's start sample. The outcome
therefore depends only on the audio and the texts, never on how fast the engine answered.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .base import PhraseMatcher

__all__ = [
    "CheckDropped",
    "CommandText",
    "GateEvent",
    "GateState",
    "Route",
    "WaitingStarted",
    "WakeDetected",
    "WakeGate",
    "WakeTimedOut",
]


class GateState(str, enum.Enum):
    """What the gate is doing."""

    WAITING = "waiting"
    """Waiting for a wake word; speech is not transcribed as commands."""
    LISTENING = "listening"
    """A wake word was heard; the next utterance is a command."""


@dataclass(frozen=True)
class WaitingStarted:
    """The gate began waiting for a wake word (RealtimeSTT's wake word detection start)."""

    sample: int


@dataclass(frozen=True)
class WakeDetected:
    """A wake word was heard; ``sample`` is where it ended (16 kHz stream position)."""

    word: str
    sample: int


@dataclass(frozen=True)
class WakeTimedOut:
    """No speech started within the timeout after the wake word; back to waiting."""

    sample: int


@dataclass(frozen=True)
class CommandText:
    """Phrase mode: the wake check of ``utterance_id`` is a command; use ``text`` as its final.

    ``skip_words`` words at the start of the transcript were the wake phrase (0 when the
    whole utterance is the command).
    """

    utterance_id: int
    text: str
    skip_words: int


@dataclass(frozen=True)
class CheckDropped:
    """Phrase mode: the wake check of ``utterance_id`` was neither a wake word nor a command."""

    utterance_id: int


GateEvent = WaitingStarted | WakeDetected | WakeTimedOut | CommandText | CheckDropped

Route = Literal["final", "check", "drop"]
"""What to do with an ended utterance: transcribe it as a command ("final"), send it as a
wake check ("check", phrase mode), or forget it ("drop")."""


@dataclass
class _Check:
    utterance_id: int
    start: int
    end: int
    done: bool = False
    text: str | None = None
    word_ends: tuple[int, ...] = field(default=())


class WakeGate:
    """Decides which speech is a command. Not thread-safe: one stream, one thread.

    Args:
        timeout_samples: after a wake word, samples at 16 kHz to wait for speech to start
            before going back to waiting (e.g. 5 s = 80000).
        phrase: the phrase matcher (the phrase backend); None for a frame detector
            (Porcupine, openWakeWord).
    """

    def __init__(self, *, timeout_samples: int, phrase: PhraseMatcher | None = None) -> None:
        self._timeout = int(timeout_samples)
        self._phrase = phrase
        self._state = GateState.WAITING
        self._since = 0  # where LISTENING began
        self._deadline = 0  # LISTENING times out here unless speech starts first
        self._open_id = 0  # utterance open now (0: none)
        self._open_start = 0
        self._open_command = False
        self._commands: set[int] = set()  # command utterances not yet ended
        self._pending: list[_Check] = []

    @property
    def state(self) -> GateState:
        """The decided state (phrase mode may have checks in flight that change it)."""
        return self._state

    @property
    def detecting(self) -> bool:
        """True while a frame detector should hear frames (frame mode, waiting)."""
        return self._phrase is None and self._state is GateState.WAITING

    @property
    def listening_since(self) -> int:
        """Stream position (samples) where the last wake word ended."""
        return self._since

    @property
    def pending_checks(self) -> int:
        """Wake checks sent and not yet resolved."""
        return len(self._pending)

    def start(self, sample: int = 0, listen_samples: int = 0) -> list[GateEvent]:
        """Begin (or begin again after a reset) at ``sample``.

        Args:
            sample: the stream position, in samples.
            listen_samples: if > 0, first listen without a wake word: speech that starts
                within this many samples is a command (RealtimeSTT's
                ``wake_word_activation_delay``); otherwise wait for a wake word at once.
        """
        self._open_id = 0
        self._open_command = False
        self._commands.clear()
        self._pending.clear()
        if listen_samples > 0:
            self._listen(sample, sample + listen_samples)
            return []
        self._state = GateState.WAITING
        return [WaitingStarted(sample)]

    def _listen(self, since: int, deadline: int) -> None:
        self._state = GateState.LISTENING
        self._since = since
        self._deadline = deadline

    def hit(self, word: str, sample: int) -> list[GateEvent]:
        """A frame detector heard ``word`` ending at ``sample``.

        While waiting, the gate starts listening and forgets the utterance holding the wake
        word: the pipeline must drop that audio and let the command start from ``sample``.
        Ignored while listening.
        """
        if self._phrase is not None or self._state is not GateState.WAITING:
            return []
        self._listen(sample, sample + self._timeout)
        self._open_id = 0
        self._open_command = False
        return [WakeDetected(word, sample)]

    def wake(self, sample: int) -> None:
        """Listen as if a wake word had ended at ``sample`` (RealtimeSTT's ``wakeup()``):
        speech starting within the timeout is a command. No event (nobody spoke a wake
        word); nothing changes while already listening.
        """
        if self._state is GateState.WAITING:
            self._listen(sample, sample + self._timeout)

    def speech_started(self, utterance_id: int, start_sample: int) -> bool:
        """An utterance began at ``start_sample``.

        Returns:
            True when it is known now to be a command (the gate is listening and no wake check
            is in flight): the pipeline tells the user speech started.
        """
        self._open_id = utterance_id
        self._open_start = start_sample
        command = (not self._pending and self._state is GateState.LISTENING
                   and start_sample <= self._deadline)
        self._open_command = command
        if command:
            self._commands.add(utterance_id)
        return command

    def is_command(self, utterance_id: int) -> bool:
        """True for an utterance known to be a command (its pieces are transcribed as finals)."""
        return utterance_id in self._commands

    def utterance_ended(self, utterance_id: int, start_sample: int, end_sample: int,
                        speech_samples: int, discarded: bool = False,
                        ) -> tuple[Route, list[GateEvent]]:
        """An utterance ended; say what to do with its audio.

        Args:
            utterance_id: the segmenter's id.
            start_sample: where its audio starts (pre-roll included).
            end_sample: where its audio ends.
            speech_samples: how much of it the VAD called speech, in samples.
            discarded: True when the segmenter found it too short to transcribe.
        """
        if utterance_id == self._open_id:
            self._open_id = 0
        events: list[GateEvent] = []
        if utterance_id in self._commands:
            self._commands.discard(utterance_id)
            if discarded:  # a cough is not the command: keep listening from here
                self._listen(end_sample, end_sample + self._timeout)
                return "drop", events
            self._state = GateState.WAITING
            events.append(WaitingStarted(end_sample))
            return "final", events
        if self._phrase is None or discarded:
            return "drop", events
        if not self._pending:
            events.extend(self._timeout_before(start_sample))
            if self._state is GateState.LISTENING:
                # Began while a wake check was in flight that turned out to be the wake word.
                self._state = GateState.WAITING
                events.append(WaitingStarted(end_sample))
                return "final", events
            if not self._phrase.plausible(end_sample - start_sample, speech_samples):
                return "drop", events
        self._pending.append(_Check(utterance_id, start_sample, end_sample))
        return "check", events

    def check_result(self, utterance_id: int, text: str | None,
                     word_ends: Sequence[int] = ()) -> list[GateEvent]:
        """The engine's text for a wake check (None: the request failed).

        Args:
            utterance_id: the utterance the check was sent for.
            text: the transcript, or None when the request failed.
            word_ends: end of each transcript word as a stream position in samples (used to
                time the wake word; may be empty).

        Returns:
            Events for every check that can now be resolved, in utterance order.
        """
        for check in self._pending:
            if check.utterance_id == utterance_id and not check.done:
                check.done = True
                check.text = text
                check.word_ends = tuple(word_ends)
                break
        else:
            return []
        events: list[GateEvent] = []
        while self._pending and self._pending[0].done:
            events.extend(self._resolve(self._pending.pop(0)))
        return events

    def advance(self, position: int) -> list[GateEvent]:
        """The stream reached ``position`` (samples): time out a wake word nobody followed."""
        if self._pending or self._state is not GateState.LISTENING:
            return []
        if self._open_id and self._open_start <= self._deadline:
            return []
        if position < self._deadline:
            return []
        return self._time_out()

    def _timeout_before(self, sample: int) -> list[GateEvent]:
        """Time out if the gate was listening and ``sample`` lies past the timeout."""
        if self._state is GateState.LISTENING and sample > self._deadline:
            return self._time_out()
        return []

    def _time_out(self) -> list[GateEvent]:
        self._state = GateState.WAITING
        return [WakeTimedOut(self._deadline), WaitingStarted(self._deadline)]

    def _resolve(self, check: _Check) -> list[GateEvent]:
        events = self._timeout_before(check.start)
        if self._state is GateState.LISTENING:
            self._state = GateState.WAITING
            if check.text is None or not check.text.strip():
                events.append(CheckDropped(check.utterance_id))
            else:
                events.append(CommandText(check.utterance_id, check.text.strip(), 0))
            events.append(WaitingStarted(check.end))
            return events
        found = self._phrase.match(check.text) if self._phrase and check.text else None
        if found is None:
            events.append(CheckDropped(check.utterance_id))
            return events
        wake_end = check.end
        if len(check.word_ends) >= found.words:
            wake_end = check.word_ends[found.words - 1]
        events.append(WakeDetected(found.phrase, wake_end))
        if found.remainder:
            events.append(CommandText(check.utterance_id, found.remainder, found.words))
            events.append(WaitingStarted(check.end))
        else:
            events.append(CheckDropped(check.utterance_id))
            self._listen(check.end, check.end + self._timeout)
        return events
