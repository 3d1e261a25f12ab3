"""TextLedger: what an appending client is sent always adds up to the final transcript.

Replays partial/final sequences like those the issue saw with tiny.en: a final that
contradicts stable words, one that only changes case or punctuation, one that adds a tail,
a multi-utterance item, and a final that ignores the prefix it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harken.core.deltas import TextLedger, logprobs, reconcile

# (stable texts of the partials in order, final texts in order)
CASES = {
    "contradicts stable words": (
        ["Letters of", "Letters of your parties", "Letters of your parties first"],
        ["Letters of your party's first name."]),
    "case and punctuation only": (
        ["to remove the", "to remove the participant who most recently joined"],
        ["To remove the participant, who most recently joined the conference."]),
    "a tail the partials never saw": (
        ["To remove the participant who most recently joined"],
        ["To remove the participant who most recently joined the conference."]),
    "final drops stable words": (
        ["please send the the report"], ["Please send the report."]),
    "two utterances in one item": (
        ["It was the best", "It was the best of times"],
        ["It was the best of times,", "it was the worst of times."]),
    "empty final": (["um"], [""]),
}


def replay(ledger: TextLedger, stables: list[str], finals: list[str]) -> list[str]:
    """Feed the partials, then the finals; return every delta sent."""
    sent = [ledger.partial(s) for s in stables]
    sent += [ledger.final(f) for f in finals]
    return [d for d in sent if d]


@pytest.mark.parametrize("name", CASES)
def test_held_deltas_add_up_to_the_exact_final(name: str) -> None:
    stables, finals = CASES[name]
    ledger = TextLedger()
    deltas = replay(ledger, stables, finals)
    final = " ".join(f for f in finals if f)
    assert "".join(deltas) == ledger.transcript == final
    # Nothing went out before the first final: the stable words were only a guess.
    assert not any(ledger.partial(s) for s in stables)


def test_only_finals_already_in_go_out_before_the_item_is_done() -> None:
    ledger = TextLedger()
    assert ledger.partial("It was the best of times") == ""
    assert ledger.final("It was the best of times,") == "It was the best of times,"
    # The next utterance's stable words are still only a guess.
    assert ledger.partial("it was the worst") == ""
    assert ledger.final("it was the worst of times.") == " it was the worst of times."
    assert ledger.sent == ledger.transcript


@pytest.mark.parametrize("name", CASES)
def test_early_stable_words_still_add_up_when_the_final_ignores_them(name: str) -> None:
    """With stable_prefix the final continues from the stable words; an engine that did
    not is repaired: the transcript keeps what was sent and takes the final's words after
    the last one aligned to it."""
    stables, finals = CASES[name]
    ledger = TextLedger(early_stable=True)
    deltas = replay(ledger, stables, finals)
    assert "".join(deltas) == ledger.transcript
    assert ledger.transcript.startswith(stables[-1] if len(finals) == 1 else "")


def test_early_stable_words_go_out_at_once_and_the_final_adds_only_the_rest() -> None:
    ledger = TextLedger(early_stable=True)
    assert ledger.partial("Letters of your") == "Letters of your"
    assert ledger.partial("Letters of your party's") == " party's"
    assert ledger.partial("Letters of your party's", ready=False) == ""
    assert ledger.final("Letters of your party's first name.") == " first name."
    assert ledger.transcript == "Letters of your party's first name."


def test_early_stable_words_wait_for_the_final_of_an_earlier_piece() -> None:
    """An utterance split at its maximum length: the stabiliser starts afresh for the
    second piece while the first piece's final is still out; its words come first."""
    ledger = TextLedger(early_stable=True)
    assert ledger.partial("one two three") == "one two three"
    assert ledger.partial("four five") == ""  # a new piece: the first piece's final is due
    # (The case/punctuation the final gives the sent words is lost: they were sent.)
    assert ledger.final("One two three, four.") == " four."
    assert ledger.partial("five six") == " five six"
    assert ledger.final("five six seven.") == " seven."
    assert ledger.sent == ledger.transcript == "one two three four. five six seven."


def test_reconcile_keeps_the_sent_words_and_the_rest_of_the_final() -> None:
    assert reconcile("Letters of your parties first",
                     "Letters of your party's first name.") == \
        "Letters of your parties first name."
    assert reconcile("to remove the participant", "To remove the participant who left.") == \
        "to remove the participant who left."
    assert reconcile("abc", "abc def") == "abc def"
    assert reconcile("one two three", "four") == "one two three"


@dataclass
class _Word:
    text: str
    probability: float


def test_logprobs_are_the_log_of_each_words_probability() -> None:
    entries = logprobs([_Word("Hello", 1.0), _Word("wörld.", 0.5), _Word("x", 0.0)],
                       first=True)
    assert [e["token"] for e in entries] == ["Hello", " wörld.", " x"]
    assert entries[0]["logprob"] == 0.0
    assert entries[1]["logprob"] == pytest.approx(-0.693147, abs=1e-6)
    assert entries[2]["logprob"] == -100.0  # a probability of 0 has no finite log
    assert bytes(entries[1]["bytes"]) == " wörld.".encode()
    assert logprobs([_Word("again", 1.0)], first=False)[0]["token"] == " again"
