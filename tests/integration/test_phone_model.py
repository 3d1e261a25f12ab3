"""The phone agent with real parts: baresip calls it on 127.0.0.1, tiny.en hears the caller
(human recordings from tests/data at 8 kHz), the voice answers, baresip records what it heard.

One agent serves every test here (one recognition engine program and one speech engine
program for all calls, as in production); its voice is the Speaker's default (Piper).
"""

from __future__ import annotations

import pytest
from phone_helpers import (
    Recorded,
    call,
    free_udp_port,
    need_phone,
    script,
    wait_call_over,
    wait_for,
)

from harken.phone import PhoneAgent
from harken.phone.timeline import active_spans, to_16k_float
from harken.testing import word_errors

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def agent():
    need_phone()
    record = Recorded()
    agent = PhoneAgent(echo=True, listen=f"127.0.0.1:{free_udp_port()}",
                       rtp_port=42000 + free_udp_port() % 1000 * 16, **record.hooks())
    agent.record = record  # type: ignore[attr-defined]
    agent.start()
    yield agent
    agent.close()


def _new_calls(agent, before: set[int], count: int, timeout: float) -> list:
    record = agent.record
    wait_for(lambda: len(set(record.ended) - before) >= count, timeout, f"{count} call end(s)")
    return [record.ended[i] for i in sorted(set(record.ended) - before)]


def _wer(reference: str, hypothesis: str) -> float:
    errors, n = word_errors(reference, hypothesis)
    return errors / max(1, n)


def test_call_is_transcribed_like_offline_and_answered(agent, offline, tmp_path):
    audio, truth = script(0.5, "austen_0880", 3.5, "austen_0930", 3.5, "goforward", 5.0)
    before = set(agent.record.ended)
    caller = call(agent.uri, audio, tmp_path / "caller")
    wait_call_over(caller, 60)
    (done,) = _new_calls(agent, before, 1, 15)

    reference = " ".join(truth)
    offline_text = offline(to_16k_float(audio))
    agent_text = " ".join(done.turns)
    assert len(done.turns) == 3, done.turns
    assert _wer(reference, agent_text) <= _wer(reference, offline_text) + 0.02, \
        (agent_text, offline_text)
    # It answered each turn, and baresip heard the answers' words.
    assert done.replies == done.turns
    heard = caller.heard()
    assert len(active_spans(heard)) >= 3
    heard_text = offline(to_16k_float(heard))
    assert _wer(" ".join(done.replies), heard_text) <= 0.3, heard_text
    assert not agent.record.errors


def test_caller_barges_in_one_second_into_the_reply(agent, offline, tmp_path):
    # The reply to austen_0870 (one 7 s sentence) starts 1-2 s after the caller stops
    # (0.5 s of silence, the final, Piper's first audio for the sentence); the caller
    # speaks again 3 s after stopping, i.e. about 1 s into the reply.
    audio, truth = script(0.5, "austen_0870", 3.0, "goforward", 6.0)
    before = set(agent.record.ended)
    caller = call(agent.uri, audio, tmp_path / "caller")
    wait_call_over(caller, 60)
    (done,) = _new_calls(agent, before, 1, 15)

    assert done.id in agent.record.barge, "no barge-in"
    heard_part = agent.record.barge[done.id]
    assert done.interrupted == heard_part
    first_reply = done.replies[0]
    assert len(heard_part.split()) < len(first_reply.split())
    assert first_reply.startswith(heard_part)
    # The caller's words are transcribed in full, and only the caller's.
    assert _wer(truth[1], done.turns[1]) <= 0.25, done.turns
    assert len(done.turns) == 2
    # On baresip's recording, the agent's audio stops soon after the caller starts again.
    sent, heard = caller.sent(), caller.heard()
    onset = active_spans(sent)[1][0]
    playing = [s for s in active_spans(heard, min_gap_ms=150) if s[0] < onset < s[1] + 0.3]
    assert playing, "the agent was not speaking when the caller barged in"
    stop = playing[-1][1]
    assert stop - onset < 0.25, f"agent audio stopped {stop - onset:.2f} s after the onset"


def test_four_calls_at_once(agent, offline, tmp_path):
    clips = ["austen_0880", "austen_0930", "goforward", "austen_0890"]  # no inner pause
    before = set(agent.record.ended)
    callers = []
    truths = []
    for i, name in enumerate(clips):
        audio, truth = script(0.5 + 0.2 * i, name, 9.0)
        truths.append(truth[0])
        callers.append(call(agent.uri, audio, tmp_path / f"caller{i}"))
    for caller in callers:
        wait_call_over(caller, 60)
    done = _new_calls(agent, before, 4, 20)
    assert len(done) == 4
    for finished in done:
        assert finished.turns and finished.replies == finished.turns
    texts = [" ".join(c.turns) for c in done]
    for truth in truths:
        assert min(_wer(truth, text) for text in texts) <= 0.3, (truth, texts)
    # Each caller heard its own reply (calls are not mixed up), in words baresip recorded.
    replies = [" ".join(c.replies) for c in done]
    for caller, truth in zip(callers, truths, strict=True):
        heard_text = offline(to_16k_float(caller.heard()))
        own = min(range(4), key=lambda i: _wer(truth, " ".join(done[i].turns)))
        nearest = min(range(4), key=lambda i: _wer(replies[i], heard_text))
        assert nearest == own, (truth, heard_text, replies)
        assert _wer(replies[own], heard_text) <= 0.35, (replies[own], heard_text)
