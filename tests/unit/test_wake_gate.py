"""The wake word gate, checked exactly with scripted detector hits and wake check texts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harken.config import RealtimeConfig, VadConfig, WakeConfig
from harken.core.pipeline import SpeechPipeline
from harken.engine.base import DecodeHints, EngineOutput, TranscribeRequest, WordTiming
from harken.events import (
    ErrorEvent,
    FinalTranscript,
    SpeechEnded,
    SpeechStarted,
    WakeWordDetected,
    WakeWordTimeout,
    WakeWordWaiting,
)
from harken.testing import ScriptedVad, drive, of_type
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


@pytest.mark.parametrize("make", [frame_gate, phrase_gate])
def test_wake_listens_like_a_wake_word_without_reporting_one(make) -> None:
    gate = make()
    gate.start(0)
    gate.wake(48000)  # RealtimeSTT's wakeup(): no WakeDetected, nothing forced
    assert gate.state is GateState.LISTENING and gate.listening_since == 48000
    gate.wake(50000)  # already listening: the deadline stays
    assert gate.advance(48000 + TIMEOUT - 1) == []
    assert gate.speech_started(1, 48000 + TIMEOUT - 1) is True
    assert gate.utterance_ended(1, 48000 + TIMEOUT - 1, 48000 + TIMEOUT + S, S) == \
        ("final", [WaitingStarted(48000 + TIMEOUT + S)])
    gate.wake(200000)
    deadline = 200000 + TIMEOUT
    assert gate.advance(deadline) == [WakeTimedOut(deadline), WaitingStarted(deadline)]


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


# -- through the pure pipeline (scripted VAD, scripted detector, no engine) ----------------



class ScriptedDetector:
    """Says ``word`` on the frame that ends at each given second."""

    def __init__(self, hits_s: list[float], word: str = "jarvis") -> None:
        self.hit_frames = {round(t * S / 512) for t in hits_s}
        self.word = word
        self.frames = 0
        self.heard: list[int] = []
        self.resets = 0

    @property
    def keywords(self) -> tuple[str, ...]:
        return (self.word,)

    def load(self) -> None:
        pass

    def process(self, frame: np.ndarray) -> str | None:
        self.frames += 1
        self.heard.append(self.frames)
        return self.word if self.frames in self.hit_frames else None

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        pass


def pipeline(intervals: list[tuple[float, float]], wake: object, **wake_kwargs: float
             ) -> SpeechPipeline:
    return SpeechPipeline(ScriptedVad(intervals), VadConfig(backend="energy"),
                          RealtimeConfig(partials=False, early_final=False),
                          wake=wake,  # type: ignore[arg-type]
                          wake_config=WakeConfig(words=("jarvis",), **wake_kwargs))


def run(pipe: SpeechPipeline, seconds: float) -> list[object]:
    # a ramp so each request's audio says where it came from
    audio = (np.arange(int(seconds * S), dtype=np.float32) / S / 100).astype(np.float32)
    return list(drive(pipe, audio, chunk_samples=1600))


def test_pipeline_transcribes_only_the_utterance_after_the_wake_word() -> None:
    # speech 1-2 s (ignored), wake word inside speech 3-3.6 s (hit at 3.7 s),
    # command 4.2-5.5 s, speech 7-8 s (ignored: back to waiting)
    detector = ScriptedDetector([3.7])
    pipe = pipeline([(1, 2), (3, 3.6), (4.2, 5.5), (7, 8)], detector)
    out = run(pipe, 10)
    requests = [o for o in out if isinstance(o, TranscribeRequest)]
    assert len(requests) == 1
    req = requests[0]
    hit = round(3.7 * S / 512) * 512
    assert req.start_sample >= hit  # the pre-roll does not reach back into the wake word
    assert req.start_sample / S == pytest.approx(4.2 - 0.4, abs=0.05)  # pre-roll from 4.2 s
    # the kept tail (128 ms), extended because the ramp after the speech is no silence: a
    # "late sound" in the next 320 ms keeps the audio going to 64 ms after it
    assert req.end_sample / S == pytest.approx(5.5 + 0.128 + 0.320 + 0.064, abs=0.05)
    kinds = [type(o).__name__ for o in out if not isinstance(o, TranscribeRequest)]
    assert kinds == ["WakeWordWaiting", "WakeWordDetected", "SpeechStarted", "SpeechEnded",
                     "WakeWordWaiting", "TranscriptionStarted"]
    assert [o for o in out if isinstance(o, WakeWordDetected)] == [
        WakeWordDetected("jarvis", hit / S)]
    waits = [o.time for o in out if isinstance(o, WakeWordWaiting)]
    assert waits[0] == 0 and len(waits) == 2  # at start, and after the command
    assert len([o for o in out if isinstance(o, SpeechStarted)]) == 1
    assert len([o for o in out if isinstance(o, SpeechEnded)]) == 1
    # the detector hears the whole stream (a hit while listening would not count)
    assert len(detector.heard) == 10 * S // 512


def test_pipeline_ignores_hits_while_listening() -> None:
    pipe = pipeline([(1, 1.5), (2.0, 3.0)], ScriptedDetector([1.6, 2.5]))
    out = run(pipe, 5)
    assert len([o for o in out if isinstance(o, WakeWordDetected)]) == 1
    (req,) = [o for o in out if isinstance(o, TranscribeRequest)]
    assert req.start_sample < 2.0 * S < 3.0 * S < req.end_sample  # not cut at 2.5 s


def test_pipeline_keeps_speech_running_straight_on_from_the_wake_word() -> None:
    # one breath 1.0-4.0 s; the detector fires at 1.6 s: the command starts right there
    pipe = pipeline([(1.0, 4.0)], ScriptedDetector([1.6]))
    out = run(pipe, 6)
    (req,) = [o for o in out if isinstance(o, TranscribeRequest)]
    hit = round(1.6 * S / 512) * 512
    # the command starts at the hit, plus 256 ms from before it (detector latency)
    assert req.start_sample == hit - 8 * 512
    assert len(req.audio) == req.end_sample - req.start_sample
    ramp = (np.arange(int(6 * S), dtype=np.float32) / S / 100).astype(np.float32)
    assert np.array_equal(req.audio, ramp[req.start_sample:req.end_sample])
    assert req.end_sample / S == pytest.approx(4.0 + 0.128 + 0.320 + 0.064, abs=0.05)


def test_pipeline_times_out_when_no_command_follows() -> None:
    pipe = pipeline([(1, 1.5), (5, 6)], ScriptedDetector([1.6]), timeout_s=2.0)
    out = run(pipe, 8)
    hit = round(1.6 * S / 512) * 512
    timeouts = [o for o in out if isinstance(o, WakeWordTimeout)]
    assert len(timeouts) == 1
    assert timeouts[0].time == pytest.approx(hit / S + 2.0, abs=0.001)
    assert not [o for o in out if isinstance(o, TranscribeRequest)]


def test_pipeline_activation_delay_listens_without_a_wake_word_first() -> None:
    pipe = pipeline([(1, 2), (6, 7)], ScriptedDetector([]), activation_delay_s=3.0)
    out = run(pipe, 9)
    requests = [o for o in out if isinstance(o, TranscribeRequest)]
    assert len(requests) == 1 and requests[0].start_sample < 2 * S
    assert [type(o).__name__ for o in out if isinstance(o, WakeWordWaiting)] == [
        "WakeWordWaiting"]  # after the first command


def answer(pipe: SpeechPipeline, req: TranscribeRequest, text: str) -> list[object]:
    tokens = text.split()
    step = req.duration / max(1, len(tokens))
    words = tuple(WordTiming(i * step, (i + 1) * step, t, 1.0) for i, t in enumerate(tokens))
    return list(pipe.on_result(req, EngineOutput(text, "en", 1.0, words)))


def test_pipeline_phrase_checks_then_command() -> None:
    phrase = PhraseWakeWord(("hey harken",))
    pipe = pipeline([(1, 2), (3, 3.8), (4.6, 6)], phrase)
    out = run(pipe, 8)
    checks = [o for o in out if isinstance(o, TranscribeRequest)]
    assert len(checks) == 3  # all undecided: each is a wake check
    assert all(c.hints == PhraseWakeWord(("hey harken",)).request_hints() for c in checks)
    assert not [o for o in out if isinstance(o, SpeechStarted)]
    assert answer(pipe, checks[0], "The weather is nice.") == []
    got = answer(pipe, checks[2], "What time is it?")
    assert got == []  # held until check 2 is answered
    got = answer(pipe, checks[1], "Hey, Harken!")
    assert isinstance(got[0], WakeWordDetected) and got[0].word == "hey harken"
    finals = [o for o in got if isinstance(o, FinalTranscript)]
    assert [f.text for f in finals] == ["What time is it?"]
    assert finals[0].utterance_id == checks[2].utterance_id
    assert isinstance(got[-1], WakeWordWaiting)


def test_pipeline_phrase_with_the_command_in_one_breath() -> None:
    pipe = pipeline([(1, 3)], PhraseWakeWord(("jarvis",)))
    out = run(pipe, 4)
    (check,) = [o for o in out if isinstance(o, TranscribeRequest)]
    got = answer(pipe, check, "Jarvis, turn on the lights.")
    final = next(o for o in got if isinstance(o, FinalTranscript))
    assert final.text == "Turn on the lights."
    assert [w.text for w in final.words] == ["turn", "on", "the", "lights."]
    assert final.start > check.start_sample / S  # starts after the wake word


def test_pipeline_utterance_begun_while_the_wake_check_was_in_flight_is_the_command() -> None:
    # "hey harken" 1-2 s; the command 3-4.5 s starts before the wake check is answered
    pipe = pipeline([(1, 2), (3, 4.5)], PhraseWakeWord(("hey harken",)))
    audio = (np.arange(8 * S, dtype=np.float32) / S / 100).astype(np.float32)
    (check,) = of_type(drive(pipe, audio[:int(3.5 * S)]), TranscribeRequest)
    assert pipe.in_utterance  # the command is under way, undecided
    assert isinstance(answer(pipe, check, "Hey, Harken.")[0], WakeWordDetected)
    out = drive(pipe, audio[int(3.5 * S):])
    assert not of_type(out, SpeechStarted)  # it was not known to be a command at its start
    (command,) = of_type(out, TranscribeRequest)
    assert command.request_id != check.request_id and command.start_sample < 3 * S
    assert command.hints == DecodeHints()  # a plain final, not a wake check
    assert [type(o).__name__ for o in out] == ["WakeWordWaiting", "TranscriptionStarted",
                                               "TranscribeRequest"]
    (final,) = answer(pipe, command, "What time is it?")
    assert isinstance(final, FinalTranscript) and final.text == "What time is it?"


def test_pipeline_phrase_failed_check_is_an_error_event_not_a_final() -> None:
    pipe = pipeline([(1, 2)], PhraseWakeWord(("jarvis",)))
    (check,) = [o for o in run(pipe, 3) if isinstance(o, TranscribeRequest)]
    got = pipe.on_failed(check, RuntimeError("boom"))
    assert [type(o) for o in got] == [ErrorEvent]


def test_pipeline_manual_recording_is_a_command_while_waiting() -> None:
    pipe = pipeline([], ScriptedDetector([]))
    run(pipe, 1)
    pipe.force_start()
    run(pipe, 1)
    out = pipe.force_end()
    assert [o for o in out if isinstance(o, TranscribeRequest)]
