"""The wake word gate, checked exactly with scripted detector hits and wake check texts."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harken.wake.gate import (
    CheckDropped,
    CommandText,
    GateState,
    WaitingStarted,
    WakeDetected,
    WakeGate,
    WakeTimedOut,
)
from harken.wake.phrase import PhraseWakeWord

S = 16000  # samples per second
TIMEOUT = 5 * S


def frame_gate() -> WakeGate:
    return WakeGate(timeout_samples=TIMEOUT)


def phrase_gate(*phrases: str) -> WakeGate:
    return WakeGate(timeout_samples=TIMEOUT,
                    phrase=PhraseWakeWord(phrases or ("hey harken", "jarvis")))


# -- frame detectors (Porcupine, openWakeWord) ---------------------------------------------

def test_starts_waiting_and_ignores_speech_without_a_wake_word() -> None:
    gate = frame_gate()
    assert gate.start(0) == [WaitingStarted(0)]
    assert gate.state is GateState.WAITING and gate.detecting
    assert gate.speech_started(1, 8000) is False
    assert not gate.is_command(1)
    assert gate.utterance_ended(1, 8000, 40000, 30000) == ("drop", [])
    assert gate.advance(10 * S) == []
    assert gate.state is GateState.WAITING


def test_hit_then_command_then_back_to_waiting() -> None:
    gate = frame_gate()
    gate.start(0)
    gate.speech_started(1, 4000)  # the wake word itself is speech
    assert gate.hit("jarvis", 20000) == [WakeDetected("jarvis", 20000)]
    assert gate.state is GateState.LISTENING and not gate.detecting
    assert gate.listening_since == 20000
    assert gate.hit("jarvis", 20512) == []  # ignored while listening
    assert gate.speech_started(2, 21000) is True
    assert gate.is_command(2)
    assert gate.advance(20000 + TIMEOUT + 1) == []  # speaking: no timeout
    assert gate.utterance_ended(2, 21000, 60000, 30000) == ("final", [WaitingStarted(60000)])
    assert gate.state is GateState.WAITING and gate.detecting
    assert not gate.is_command(2)
    # the wake word's own utterance was forgotten at the hit: nothing to transcribe
    assert gate.utterance_ended(1, 4000, 20000, 12000) == ("drop", [])


def test_timeout_exactly_at_the_deadline() -> None:
    gate = frame_gate()
    gate.start(0)
    gate.hit("computer", 32000)
    assert gate.advance(32000 + TIMEOUT - 1) == []
    assert gate.state is GateState.LISTENING
    deadline = 32000 + TIMEOUT
    assert gate.advance(deadline) == [WakeTimedOut(deadline), WaitingStarted(deadline)]
    assert gate.state is GateState.WAITING
    assert gate.advance(deadline + S) == []  # once only
    assert gate.speech_started(2, deadline + S) is False


def test_speech_starting_after_the_deadline_is_not_a_command() -> None:
    gate = frame_gate()
    gate.start(0)
    gate.hit("jarvis", 0)
    assert gate.speech_started(2, TIMEOUT + 1) is False
    assert gate.advance(TIMEOUT + 512) == [WakeTimedOut(TIMEOUT), WaitingStarted(TIMEOUT)]
    assert gate.utterance_ended(2, TIMEOUT + 1, TIMEOUT + S, S // 2) == ("drop", [])


def test_a_too_short_command_keeps_listening_from_its_end() -> None:
    gate = frame_gate()
    gate.start(0)
    gate.hit("jarvis", 16000)
    gate.speech_started(2, 20000)
    assert gate.utterance_ended(2, 20000, 24000, 2000, discarded=True) == ("drop", [])
    assert gate.state is GateState.LISTENING and gate.listening_since == 24000
    assert gate.advance(24000 + TIMEOUT) == [WakeTimedOut(24000 + TIMEOUT),
                                             WaitingStarted(24000 + TIMEOUT)]


def test_start_again_resets_everything() -> None:
    gate = frame_gate()
    gate.hit("jarvis", 100)
    gate.speech_started(2, 200)
    assert gate.start(5000) == [WaitingStarted(5000)]
    assert gate.state is GateState.WAITING and not gate.is_command(2)


# -- phrase backend ------------------------------------------------------------------------

def test_phrase_alone_then_the_next_utterance_is_the_command() -> None:
    gate = phrase_gate()
    gate.start(0)
    assert not gate.detecting  # no frame detector in phrase mode
    assert gate.speech_started(1, 8000) is False
    assert gate.utterance_ended(1, 8000, 30000, 14000) == ("check", [])
    assert gate.pending_checks == 1
    events = gate.check_result(1, "Hey, Harken!", word_ends=[14000, 26000])
    assert events == [WakeDetected("hey harken", 26000), CheckDropped(1)]
    assert gate.state is GateState.LISTENING and gate.listening_since == 30000
    assert gate.speech_started(2, 40000) is True
    assert gate.utterance_ended(2, 40000, 80000, 30000) == ("final", [WaitingStarted(80000)])
    assert gate.state is GateState.WAITING


def test_phrase_with_a_command_in_the_same_breath() -> None:
    gate = phrase_gate()
    gate.start(0)
    gate.speech_started(1, 0)
    assert gate.utterance_ended(1, 0, 40000, 30000)[0] == "check"
    events = gate.check_result(1, "Jarvis, what time is it?")
    assert events == [WakeDetected("jarvis", 40000), CommandText(1, "What time is it?", 1),
                      WaitingStarted(40000)]
    assert gate.state is GateState.WAITING  # the command was said: wait for the next wake word


def test_other_speech_is_dropped_and_the_gate_keeps_waiting() -> None:
    gate = phrase_gate()
    gate.start(0)
    gate.speech_started(1, 0)
    gate.utterance_ended(1, 0, 40000, 30000)
    assert gate.check_result(1, "Have you heard it?") == [CheckDropped(1)]
    assert gate.check_result(1, "Jarvis") == []  # answered already
    assert gate.check_result(99, "Jarvis") == []  # never asked
    assert gate.state is GateState.WAITING


@pytest.mark.parametrize(("length", "speech", "route"), [
    (20000, 4000, "drop"),  # 0.25 s of speech: below the first stage
    (20000, 4800, "check"),  # 0.3 s
    (6 * S, 5 * S, "check"),
    (6 * S + 1, 5 * S, "drop"),  # longer than max_utterance_s
])
def test_cheap_first_stage(length: int, speech: int, route: str) -> None:
    gate = phrase_gate()
    gate.start(0)
    gate.speech_started(1, 0)
    assert gate.utterance_ended(1, 0, length, speech)[0] == route


def test_a_failed_check_is_dropped() -> None:
    gate = phrase_gate()
    gate.start(0)
    gate.utterance_ended(1, 0, S, S // 2)
    assert gate.check_result(1, None) == [CheckDropped(1)]
    assert gate.state is GateState.WAITING


def test_utterance_during_a_check_in_flight_becomes_the_command() -> None:
    gate = phrase_gate()
    gate.start(0)
    gate.speech_started(1, 0)
    assert gate.utterance_ended(1, 0, 20000, 12000)[0] == "check"
    # the next utterance starts and ends before the first check is answered
    assert gate.speech_started(2, 30000) is False  # undecided
    assert gate.utterance_ended(2, 30000, 30000 + 8 * S, 7 * S)[0] == "check"  # even if long
    assert gate.check_result(2, "Turn on the lights.") == []  # held: 1 comes first
    events = gate.check_result(1, "jarvis")
    assert events == [WakeDetected("jarvis", 20000), CheckDropped(1),
                      CommandText(2, "Turn on the lights.", 0), WaitingStarted(30000 + 8 * S)]
    assert gate.state is GateState.WAITING and gate.pending_checks == 0


def test_undecided_utterance_after_the_timeout_is_a_new_wake_check() -> None:
    gate = phrase_gate()
    gate.start(0)
    gate.utterance_ended(1, 0, 20000, 12000)
    late = 20000 + TIMEOUT + 1
    gate.speech_started(2, late)
    gate.utterance_ended(2, late, late + S, S // 2)
    events = gate.check_result(1, "Jarvis.") + gate.check_result(2, "Jarvis, lights on")
    assert events == [
        WakeDetected("jarvis", 20000), CheckDropped(1),
        WakeTimedOut(20000 + TIMEOUT), WaitingStarted(20000 + TIMEOUT),
        WakeDetected("jarvis", late + S), CommandText(2, "Lights on", 1),
        WaitingStarted(late + S),
    ]


def test_utterance_open_when_the_check_resolves_is_the_command() -> None:
    gate = phrase_gate()
    gate.start(0)
    gate.utterance_ended(1, 0, 20000, 12000)
    assert gate.speech_started(2, 25000) is False  # check 1 still in flight
    gate.check_result(1, "hey harken")
    assert gate.advance(20000 + TIMEOUT + S) == []  # speech began in time: no timeout
    assert gate.utterance_ended(2, 25000, 20000 + TIMEOUT + S, 2 * S) == (
        "final", [WaitingStarted(20000 + TIMEOUT + S)])


def test_phrase_timeout_waits_for_checks_in_flight() -> None:
    gate = phrase_gate()
    gate.start(0)
    gate.utterance_ended(1, 0, 20000, 12000)
    assert gate.advance(20 * S) == []  # nothing decided yet
    gate.check_result(1, "Jarvis")
    assert gate.advance(20 * S) == [WakeTimedOut(20000 + TIMEOUT),
                                    WaitingStarted(20000 + TIMEOUT)]


TEXTS = ["jarvis", "Jarvis, lights on.", "What a day.", "hey harken", "", None, "OK."]


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.sampled_from(TEXTS), min_size=1, max_size=6),
       order=st.randoms(use_true_random=False), gaps=st.lists(
           st.integers(min_value=S // 10, max_value=7 * S), min_size=6, max_size=6))
def test_outcome_does_not_depend_on_the_order_results_arrive(
        texts: list[str | None], order: object, gaps: list[int]) -> None:
    """Results resolve in utterance order: any arrival order gives the same events."""
    def run(arrival: list[int]) -> list[object]:
        gate = phrase_gate()
        gate.start(0)
        position = 0
        for uid, gap in zip(range(1, len(texts) + 1), gaps, strict=False):
            start = position + gap
            gate.speech_started(uid, start)
            route, _ = gate.utterance_ended(uid, start, start + S, S // 2)
            assert route == "check"
            position = start + S
        events: list[object] = []
        for uid in arrival:
            events += gate.check_result(uid, texts[uid - 1])
        return events

    in_order = list(range(1, len(texts) + 1))
    shuffled = in_order[:]
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    assert run(shuffled) == run(in_order)


def test_every_pair_of_wake_and_command_outcomes() -> None:
    """Exhaustive over two utterances: each check ends resolved, nothing is left pending."""
    for first, second in itertools.product(TEXTS, repeat=2):
        gate = phrase_gate()
        gate.start(0)
        gate.utterance_ended(1, 0, S, S // 2)
        gate.utterance_ended(2, 2 * S, 3 * S, S // 2)
        events = gate.check_result(2, second) + gate.check_result(1, first)
        assert gate.pending_checks == 0
        dropped_or_command = [e for e in events if isinstance(e, (CheckDropped, CommandText))]
        assert sorted(e.utterance_id for e in dropped_or_command) == [1, 2], (first, second)
