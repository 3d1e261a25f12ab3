"""Smart end of turn: the pure policy, and the pipeline driven by numpy frames with a scripted
VAD, a scripted turn model and engine answers pushed by hand."""

from __future__ import annotations

import pytest

from harken.config import RealtimeConfig, VadConfig
from harken.core import SpeechPipeline
from harken.core.turn import TurnSettings, ends_sentence, sounds_unfinished, turn_silence
from harken.engine.base import EngineOutput, TranscribeRequest
from harken.errors import ConfigError
from harken.events import FinalTranscript, PauseEnded, PauseStarted, SpeechEnded
from harken.testing import ScriptedTurnModel, ScriptedVad, chunks, silence, tone

RATE = 16000
CHUNK = 320  # 20 ms, as a microphone delivers


@pytest.mark.parametrize(("text", "unfinished"), [
    ("I'd like to book a table for", True),
    ("I'd like to book a table for four.", False),
    ("and then we went, um", True),
    ("It was the best of times,", True),
    ("So the thing is...", True),
    ("Well, I think so.", False),
    ("I think so", True),
    ("Is it the one you like?", False),
    ("Go forward ten meters.", False),
    ("He said \u2014", True),
    ("", False),
    ("The password is.", True),  # a copula after a noun: mid-thought
    ("than he was.", False),  # after a pronoun it ends the sentence
    ("Here it is.", False),
    ("than he was", True),  # ... but not without the sentence end
])
def test_unfinished_text_is_recognised(text: str, unfinished: bool) -> None:
    assert sounds_unfinished(text) is unfinished


@pytest.mark.parametrize(("text", "ends"), [
    ("Go forward.", True), ("Really?", True), ("Stop!\"", True), ("Well...", False),
    ("go forward", False), ("times,", False),
])
def test_sentence_ends(text: str, ends: bool) -> None:
    assert ends_sentence(text) is ends


S = TurnSettings(min_silence=3200, normal_silence=8000, max_silence=24000, threshold=0.7,
                 low=0.15)


@pytest.mark.parametrize(("p", "words", "expected"), [
    (None, {}, S.normal_silence),  # model not asked yet
    (0.95, {"final_text": "Go forward ten meters."}, S.min_silence),  # model and words agree
    (0.95, {"pending": True}, S.max_silence),  # the final's words will decide
    (0.95, {}, S.normal_silence),  # final words may still come
    (0.95, {"early_final": False}, S.min_silence),  # no words to come: the model alone
    (0.95, {"early_final": False, "partial_text": "Go forward."}, S.min_silence),
    (0.95, {"early_final": False, "partial_text": "go forward"}, S.normal_silence),
    (0.95, {"partial_text": "Go forward."}, S.normal_silence),  # a partial lags the audio
    (0.95, {"final_text": "a table for"}, S.max_silence),  # the words veto the model
    (0.95, {"final_text": "The password is."}, S.max_silence),
    (0.95, {"final_text": "Than he was."}, S.min_silence),  # a pronoun's copula ends it
    (0.95, {"final_text": "go forward ten meters"}, S.normal_silence),  # no sentence end
    (0.5, {"final_text": "Go forward ten meters."}, S.min_silence),  # unsure: words decide
    (0.5, {"final_text": "go forward ten meters"}, S.normal_silence),
    (0.05, {"final_text": "Go forward ten meters."}, S.max_silence),  # mid-thought voice
    (None, {"partial_text": "and then, um"}, S.max_silence),
    (0.95, {"partial_text": "and the", "final_text": "and the one."}, S.min_silence),
])
def test_turn_silence_table(p, words, expected) -> None:
    assert turn_silence(S, p, **words) == expected


def test_with_low_eagerness_the_model_must_agree_with_the_words() -> None:
    low = TurnSettings.from_config(VadConfig(turn_detection="smart", turn_eagerness="low"))
    done = {"final_text": "Go forward ten meters."}
    assert turn_silence(low, 0.5, **done) == low.normal_silence
    assert turn_silence(low, 0.75, **done) == low.min_silence
    assert turn_silence(low, 0.2, **done) == low.max_silence
    auto = TurnSettings.from_config(VadConfig(turn_detection="smart"))
    assert turn_silence(auto, 0.2, **done) == auto.min_silence


def test_settings_follow_the_config() -> None:
    cfg = VadConfig(turn_detection="smart", min_silence_ms=160, max_silence_ms=2000,
                    turn_eagerness="high")
    s = TurnSettings.from_config(cfg)
    assert (s.min_silence, s.normal_silence, s.max_silence) == (2560, 8000, 32000)
    assert s.threshold < TurnSettings.from_config(VadConfig(turn_eagerness="low")).threshold
    from harken.config import TURN_EAGERNESS
    from harken.core.turn import EAGERNESS

    assert set(EAGERNESS) == set(TURN_EAGERNESS)


@pytest.mark.parametrize("bad", [
    {"turn_detection": "semantic"},
    {"turn_eagerness": "eager"},
    {"turn_detection": "smart", "min_silence_ms": 600},  # above the normal 500
    {"turn_detection": "smart", "max_silence_ms": 400},  # below the normal 500
    {"min_silence_ms": 10},
])
def test_bad_turn_settings_are_refused(bad) -> None:
    with pytest.raises(ConfigError):
        VadConfig(**bad)


def test_smart_without_a_model_is_refused() -> None:
    with pytest.raises(ConfigError, match="turn model"):
        SpeechPipeline(ScriptedVad([]), VadConfig(turn_detection="smart"))


def run(intervals, total_s: float, *, p=0.95, texts=("Go forward ten meters.",),
        compute_s: float = 0.1, detection: str = "smart", partials: bool = False,
        **vad):
    """Feed speech (tone in ``intervals``) then silence; answer each final request
    ``compute_s`` of stream time after it was sent, with the next of ``texts``. Returns
    the pipeline's outputs as (stream seconds, output) and the turn model."""
    model = ScriptedTurnModel(p)
    cfg = VadConfig(backend="energy", turn_detection=detection, **vad)
    pipe = SpeechPipeline(ScriptedVad(intervals), cfg,
                          RealtimeConfig(partials=partials, early_final=True),
                          turn=model if detection == "smart" else None)
    audio = silence(total_s)
    for a, b in intervals:
        audio[int(a * RATE):int(b * RATE)] = tone(b - a)
    log: list[tuple[float, object]] = []
    due: list[tuple[int, TranscribeRequest]] = []
    answers = iter(texts)
    for c in chunks(audio, CHUNK):
        for when, req in [d for d in due if d[0] <= pipe.position]:
            due.remove((when, req))
            text = next(answers, texts[-1])
            log.extend((pipe.position / RATE, o)
                       for o in pipe.on_result(req, EngineOutput(text=text)))
        for o in pipe.feed(c):
            log.append((pipe.position / RATE, o))
            if isinstance(o, TranscribeRequest) and o.kind == "final":
                due.append((pipe.position + int(compute_s * RATE), o))
    return log, model


def ended_at(log) -> list[float]:
    return [t for t, o in log if isinstance(o, SpeechEnded)]


def finals(log) -> list[tuple[float, str]]:
    return [(t, o.text) for t, o in log if isinstance(o, FinalTranscript)]


def test_a_finished_sentence_ends_when_its_words_come_back() -> None:
    log, model = run([(0.5, 2.0)], 4.0, compute_s=0.15)
    (end,) = ended_at(log)
    (final,) = finals(log)
    # The early final is cut at the first silent frame and answered 150 ms later; the model
    # is asked at 200 ms: the turn ends then, not after the normal 500 ms.
    assert 2.2 <= end <= 2.25
    assert final == (end, "Go forward ten meters.")
    assert len(model.heard) == 1  # one model call for the pause
    assert model.heard[0] >= int(1.5 * RATE) + int(0.2 * RATE)  # speech and 200 ms silence


def test_smart_turns_ask_for_the_early_final_at_the_first_silent_frame() -> None:
    def early_request(detection: str) -> tuple[float, float]:
        log, _ = run([(0.5, 2.0)], 4.0, detection=detection)
        sent, request = next((t, o) for t, o in log
                             if isinstance(o, TranscribeRequest) and o.kind == "final")
        return sent, request.end_sample / RATE

    smart_sent, smart_end = early_request("smart")
    fixed_sent, fixed_end = early_request("fixed")
    assert 2.0 < smart_sent <= 2.0 + 0.064  # the frame the VAD first calls silence
    # Its audio ends there (the stream is fed 20 ms at a time): nothing heard is left out.
    assert smart_end == pytest.approx(smart_sent, abs=0.02)
    assert fixed_end - smart_end == pytest.approx(0.096, abs=0.001)  # 3 frames later
    assert fixed_sent - smart_sent == pytest.approx(0.096, abs=0.02)


def test_fixed_turns_wait_the_normal_silence() -> None:
    log, _ = run([(0.5, 2.0)], 4.0, detection="fixed", compute_s=0.15)
    (end,) = ended_at(log)
    assert 2.45 <= end <= 2.6


def test_the_model_alone_does_not_end_before_the_words_are_back() -> None:
    log, _ = run([(0.5, 2.0)], 4.0, compute_s=0.3)
    (end,) = ended_at(log)
    assert 2.3 <= end <= 2.37  # one frame + 300 ms: the answer, not the 200 ms check


def test_words_that_sound_unfinished_wait_the_longest_silence() -> None:
    log, _ = run([(0.5, 2.0)], 5.0, texts=("I'd like to book a table for",))
    (end,) = ended_at(log)
    assert 3.45 <= end <= 3.6  # max_silence_ms 1500


def test_an_unsure_model_lets_the_words_decide_unless_eagerness_is_low() -> None:
    log, _ = run([(0.5, 2.0)], 4.0, p=0.5)
    (end,) = ended_at(log)
    assert 2.2 <= end <= 2.25  # the words are back at ~150 ms, the model asked at 200
    log, _ = run([(0.5, 2.0)], 4.0, p=0.5, turn_eagerness="low")
    (end,) = ended_at(log)
    assert 2.45 <= end <= 2.6  # the normal 500 ms


def test_a_mid_thought_pause_is_not_split_where_fixed_turns_split_it() -> None:
    speech = [(0.5, 2.0), (2.8, 4.0)]  # an 800 ms pause after "a table for"
    texts = ("I'd like to book a table for", "I'd like to book a table for four.")
    smart, model = run(speech, 6.0, texts=texts)
    fixed, _ = run(speech, 6.0, texts=texts, detection="fixed")
    assert len(finals(fixed)) == 2
    assert [text for _, text in finals(smart)] == ["I'd like to book a table for four."]
    assert len(model.heard) == 2  # one call per pause
    (end,) = ended_at(smart)
    assert 4.1 <= end <= 4.4


def test_smart_turns_report_the_pause_they_wait_in() -> None:
    # The mid-thought pause holds the turn (speech resumes), the last one ends it early:
    # each pause is reported where it began and where it ended.
    speech = [(0.5, 2.0), (2.8, 4.0)]
    texts = ("I'd like to book a table for", "I'd like to book a table for four.")
    log, _ = run(speech, 6.0, texts=texts, pause_events=True)
    pauses = [o for _, o in log if isinstance(o, (PauseStarted, PauseEnded))]
    frame = 512 / RATE
    assert [type(o).__name__ for o in pauses] == ["PauseStarted", "PauseEnded",
                                                  "PauseStarted", "PauseEnded"]
    assert pauses[0].time == pytest.approx(2.0, abs=frame)
    assert pauses[1] == PauseEnded(1, pauses[1].time, resumed=True)
    assert pauses[1].time == pytest.approx(2.8, abs=frame)
    assert pauses[2].time == pytest.approx(4.0, abs=frame)
    (end,) = [t for t, o in log if isinstance(o, SpeechEnded)]
    assert not pauses[3].resumed and pauses[3].time == pytest.approx(end, abs=0.021)


def test_a_low_probability_holds_the_turn_without_words() -> None:
    speech = [(0.5, 2.0), (2.8, 4.0)]
    log, _ = run(speech, 6.0, p=[0.05, 0.95], texts=("Go forward.", "Go forward ten meters."))
    assert [text for _, text in finals(log)] == ["Go forward ten meters."]


def test_partial_text_that_sounds_unfinished_holds_the_turn_without_early_finals() -> None:
    model = ScriptedTurnModel(0.95)
    pipe = SpeechPipeline(ScriptedVad([(0.5, 2.0)]),
                          VadConfig(backend="energy", turn_detection="smart"),
                          RealtimeConfig(partials=True, early_final=False,
                                         partial_interval_ms=300), turn=model)
    audio = silence(4.0)
    audio[8000:32000] = tone(1.5)
    ended = []
    for c in chunks(audio, CHUNK):
        for o in pipe.feed(c):
            if isinstance(o, TranscribeRequest) and o.kind == "partial":
                pipe.on_result(o, EngineOutput(text="and the"))
            if isinstance(o, SpeechEnded):
                ended.append(pipe.position / RATE)
    assert len(ended) == 1 and 3.45 <= ended[0] <= 3.6


def test_same_input_same_decisions() -> None:
    speech = [(0.5, 2.0), (2.6, 3.1), (3.9, 5.0)]
    texts = ("Well,", "Well, go on.", "Go forward ten meters.")
    first, _ = run(speech, 7.0, p=[0.9, 0.6, 0.99], texts=texts)
    second, _ = run(speech, 7.0, p=[0.9, 0.6, 0.99], texts=texts)

    def summary(log):
        return [(round(t, 3), type(o).__name__) for t, o in log]

    assert summary(first) == summary(second)


def test_a_slow_engine_holds_the_turn_until_its_words_are_back() -> None:
    # Words back one frame + 600 ms into the silence: after the normal 500 ms, which does
    # not end the turn while they are awaited (the final could not be shown sooner anyway).
    log, _ = run([(0.5, 2.0)], 4.0, compute_s=0.6)
    (end,) = ended_at(log)
    assert 2.6 <= end <= 2.7
    assert finals(log) == [(end, "Go forward ten meters.")]
    held, _ = run([(0.5, 2.0), (2.85, 4.0)], 6.0, compute_s=0.6,
                  texts=("I'd like to book a table for", "I'd like to book a table for four."))
    assert [text for _, text in finals(held)] == ["I'd like to book a table for four."]


def test_the_cli_turn_flag_reaches_the_recorder_and_the_server() -> None:
    from harken.cli.main import _listen_settings, build_parser
    from harken.cli.serve import _config

    parser = build_parser()
    assert _listen_settings(parser.parse_args(["listen", "--turn", "smart"]))[
        "turn_detection"] == "smart"
    assert _listen_settings(parser.parse_args(["listen"]))["turn_detection"] == "fixed"
    assert _config(parser.parse_args(["serve", "--turn", "smart"])).vad.turn_detection == "smart"
    with pytest.raises(SystemExit):
        parser.parse_args(["listen", "--turn", "semantic"])
