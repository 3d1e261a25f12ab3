"""The latency benchmark's metric functions (benchmarks/latency.py), on hand-made cases and
the committed recordings. Pure: no model, no threads."""

from __future__ import annotations

import importlib.util
import json
import sys
import wave
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


def _load() -> ModuleType:
    if str(ROOT / "benchmarks") not in sys.path:  # for its sibling module machine_info
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("harken_bench_latency",
                                                  ROOT / "benchmarks" / "latency.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


lat = _load()


def test_speech_bounds_agree_with_the_manifest() -> None:
    manifest = json.loads((DATA / "manifest.json").read_text())
    for name, info in manifest.items():
        with wave.open(str(DATA / f"{name}.wav")) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        start, end = lat.speech_bounds(pcm)
        assert abs(start - info["speech_s"][0]) <= 0.05, name
        assert abs(end - info["speech_s"][1]) <= 0.05, name


def test_speech_bounds_on_digital_silence_around_a_tone() -> None:
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = np.concatenate([np.zeros(8000, np.float32), tone, np.zeros(16000, np.float32)])
    start, end = lat.speech_bounds(audio)
    assert start == pytest.approx(0.5, abs=0.011)
    assert end == pytest.approx(1.5, abs=0.011)
    assert lat.speech_bounds(np.zeros(16000, np.float32)) == (0.0, 0.0)


def test_words_normalise_case_and_punctuation() -> None:
    assert lat.words("Go forward, ten-meters!") == ["go", "forward", "ten", "meters"]
    assert lat.words("") == []


REF = [("he", 1.0), ("was", 1.2), ("not", 1.5), ("an", 1.6), ("ill", 1.9), ("disposed", 2.4)]


def test_aligned_end_of_exact_prefix() -> None:
    assert lat.aligned_end(["he", "was", "not"], REF) == 1.5
    assert lat.aligned_end(["he"], REF) == 1.0


def test_aligned_end_with_a_substituted_last_word() -> None:
    # "old" heard for "ill": still aligned to the fifth word
    assert lat.aligned_end(["he", "was", "not", "an", "old"], REF) == 1.9


def test_aligned_end_with_an_inserted_word() -> None:
    # an extra word inside the stable text does not move its end past "was"
    assert lat.aligned_end(["he", "really", "was"], REF) == 1.2
    # a wrong word at the end counts as standing for the next reference word
    assert lat.aligned_end(["he", "was", "really"], REF) == 1.5


def test_aligned_end_unalignable() -> None:
    assert lat.aligned_end([], REF) is None
    assert lat.aligned_end(["he"], []) is None


def test_flicker_counts_changed_unstable_words_once() -> None:
    partials = [
        ("", "he was"),
        ("he", "was not an illness"),      # "illness" at position 4 is wrong
        ("he was", "not an illness"),      # same wrong word again: not counted twice
        ("he was not", "an old disposed"),  # "old" at 4 wrong; "disposed" at 5 right
    ]
    unstable, stable = lat.flicker(partials, "He was not an ill disposed young man.")
    assert unstable == 2
    assert stable == 0


def test_flicker_counts_contradicted_stable_words_and_words_past_the_end() -> None:
    unstable, stable = lat.flicker([("go for", "word ten meters please")],
                                   "Go forward ten meters.")
    assert stable == 1  # "for" where the final has "forward"
    # positions 2..5: "word" (final: ten), "ten" (meters), "meters" (past end), "please"
    assert unstable == 4


def test_whole_word_split_moves_a_half_word() -> None:
    assert lat.whole_word_split("Go forw", "ard 10 meters.") == ("Go", "forward 10 meters.")
    assert lat.whole_word_split("Go", " forward") == ("Go", " forward")
    assert lat.whole_word_split("He was ", "not") == ("He was ", "not")
    assert lat.whole_word_split("", "He was") == ("", "He was")
    assert lat.whole_word_split("Hel", "lo") == ("", "Hello")


def test_percentile_and_cadence() -> None:
    assert lat.percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert lat.percentile([], 50) != lat.percentile([], 50)  # NaN for nothing
    assert lat.cadence([0.0, 0.3, 0.9]) == pytest.approx([0.3, 0.6])
    assert lat.cadence([1.0]) == []


def test_utterance_assignment() -> None:
    starts = [1.5, 6.0, 10.0]
    assert lat.utterance_at(0.2, starts) == 0
    assert lat.utterance_at(5.9, starts) == 0
    assert lat.utterance_at(6.0, starts) == 1
    assert lat.utterance_at(30.0, starts) == 2
    ends = [4.0, 8.5, 12.0]
    assert lat.last_ended(4.5, ends) == 0
    assert lat.last_ended(9.0, ends) == 1


def test_virtual_e2f() -> None:
    # plain final: requested when the silence elapsed (close), then 0.4 s compute
    assert lat.virtual_e2f(2.0, close=2.6, issue=2.6, compute=0.4) == pytest.approx(1.0)
    # early final requested at 2.3 s, ready at 2.7 s: delivered at ready
    assert lat.virtual_e2f(2.0, close=2.6, issue=2.3, compute=0.4) == pytest.approx(0.7)
    # early final ready before the silence elapsed: delivered at close
    assert lat.virtual_e2f(2.0, close=2.6, issue=2.1, compute=0.2) == pytest.approx(0.6)
    assert lat.virtual_e2f(2.0, close=None, issue=2.5, compute=0.5) == pytest.approx(1.0)
    assert lat.virtual_e2f(2.0, close=None, issue=None, compute=0.5) is None


def _utts() -> list:
    a = lat.Utterance("a", np.zeros(10, np.int16), offset=1.5, speech_end=3.0,
                      reference="he was not", ref_words=[("he", 2.0), ("was", 2.5),
                                                         ("not", 3.0)])
    b = lat.Utterance("b", np.zeros(10, np.int16), offset=5.0, speech_end=7.0,
                      reference="go forward", ref_words=[("go", 6.0), ("forward", 7.0)])
    return [a, b]


def test_score_real_time_run() -> None:
    events = [
        {"kind": "partial", "t": 2.6, "fed": 2.6, "stable": "", "unstable": "he"},
        {"kind": "partial", "t": 2.9, "fed": 2.9, "stable": "he", "unstable": "was knot"},
        {"kind": "partial", "t": 3.3, "fed": 3.3, "stable": "he was", "unstable": "not"},
        {"kind": "final", "t": 3.8, "fed": 3.8, "text": "He was not.", "start": 1.6, "end": 3.3,
         "uid": 1, "compute": 0.3},
        # utterance b: one final, one word wrong, no partials
        {"kind": "final", "t": 8.0, "fed": 8.0, "text": "Go backward", "start": 5.5, "end": 7.2,
         "uid": 2, "compute": 0.2},
    ]
    s = lat.score(lat.Run("x", events), _utts())
    assert s.e2f == pytest.approx([0.8, 1.0])
    assert s.lag == pytest.approx([2.9 - 2.0, 3.3 - 2.5])
    assert s.unaligned == 1
    assert s.gaps == pytest.approx([0.3, 0.4])
    assert s.flicker == [1, 0]
    assert (s.errors, s.ref_words) == (1, 5)
    assert (s.finals, s.missed) == (2, 0)


def test_score_counts_a_missed_utterance_as_deletions() -> None:
    events = [{"kind": "final", "t": 4.0, "fed": 4.0, "text": "he was not"}]  # no stream times
    s = lat.score(lat.Run("rtstt", events), _utts())
    assert s.missed == 1
    assert (s.errors, s.ref_words) == (2, 5)
    assert s.e2f == pytest.approx([1.0])


def test_score_simulated_run_uses_stream_positions() -> None:
    events = [
        {"kind": "transcription_start", "uid": 1, "pos": 3.3, "t": 0.1, "fed": 3.3},
        {"kind": "speech_end", "uid": 1, "pos": 3.5, "t": 0.1, "fed": 3.5},
        {"kind": "final", "uid": 1, "text": "he was not", "start": 1.6, "end": 3.3,
         "compute": 0.4, "t": 0.2, "fed": 3.6, "pos": 3.6},
    ]
    s = lat.score(lat.Run("x", events), _utts()[:1], simulated=True)
    assert s.e2f == pytest.approx([3.7 - 3.0])
    assert s.lag == []


def test_score_matches_late_finals_to_their_requests() -> None:
    # the first final arrives after the second utterance's speech ended (a slow engine)
    events = [
        {"kind": "transcription_start", "t": 3.6, "fed": 3.6},
        {"kind": "transcription_start", "t": 7.6, "fed": 7.6},
        {"kind": "final", "t": 7.9, "fed": 7.9, "text": "he was not"},
        {"kind": "final", "t": 8.2, "fed": 8.2, "text": "go forward"},
    ]
    s = lat.score(lat.Run("rtstt", events), _utts())
    assert s.missed == 0
    assert s.errors == 0
    assert s.e2f == pytest.approx([4.9, 1.2])


def test_stable_errors_are_judged_by_alignment() -> None:
    final = "And Mr. John Dashwood had then leisure"
    # the final adds "and" in front: one error, not one per stable word
    assert lat.flicker([("Mr. John Dashwood had", "then")], final)[1] == 1
    # a word the final inserts inside the stable text counts; the words after it do not
    assert lat.flicker([("the quick fox jumps", "")], "the quick brown fox jumps over")[1] == 1
    # the rest of the utterance after the stable text is no error
    assert lat.flicker([("the quick", "brown")], "the quick brown fox jumps over")[1] == 0
    # the same stable error shown by several partials counts once
    assert lat.flicker([("call stellar", ""), ("call stellar and", "")],
                       "call Stella and ask")[1] == 1
