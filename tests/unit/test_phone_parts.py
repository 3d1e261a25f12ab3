"""The phone agent's pure parts: SIP URI checks, the wire, what the caller
heard of a reply, the echo guard, reply pieces from every kind of on_turn result, hook
threads, and the call-audio timeline helpers."""

from __future__ import annotations

import asyncio
import io
import threading
import time

import numpy as np
import pytest

from harken.errors import ConfigError, ProtocolError
from harken.phone import PhoneAgent
from harken.phone.call import _echoes, _heard, _Sentence
from harken.phone.hooks import Workers, reply_pieces
from harken.phone.reply_audio import first_pieces, lead_in, quiet_tail
from harken.phone.timeline import active_spans, to_8k_int16, to_16k_float
from harken.phone.wire import check_phone_message, check_sip_uri, parse_listen
from harken.worker.protocol import Message, read_message, write_message


@pytest.mark.parametrize("uri", ["sip:alice@example.com", "sip:bot@127.0.0.1:5070",
                                 "sips:a.b-c@pbx.example.org;transport=tls", "sip:pbx.example",
                                 "sip:100@[::1]:5060"])
def test_good_sip_uris_pass(uri):
    assert check_sip_uri(uri) == uri


@pytest.mark.parametrize("uri", ["", "alice@example.com", "http://x", "sip:", "sip:a@@b",
                                 "sip:a b@c", "sip:alice@host:0", "sip:alice@host:99999",
                                 "sip:alice@-host", 5070])
def test_malformed_sip_uris_are_one_sentence(uri):
    with pytest.raises(ConfigError, match=r"is not a SIP URI; write it like|outside 1-65535"):
        check_sip_uri(uri)  # type: ignore[arg-type]


def test_listen_address():
    assert parse_listen("127.0.0.1:5070") == ("127.0.0.1", 5070)
    assert parse_listen("[::1]:5070") == ("::1", 5070)
    for bad in ("127.0.0.1", ":5070", "host:0", "host:x", "host:70000"):
        with pytest.raises(ConfigError, match="host:port"):
            parse_listen(bad)


def test_wire_messages_round_trip_and_are_checked():
    buf = io.BytesIO()
    write_message(buf, "audio", {"call": 3, "played": 160, "pending": 0}, b"\x01\x00" * 160)
    buf.seek(0)
    message = read_message(buf)
    assert message is not None
    check_phone_message(message, "audio")
    assert message.payload == b"\x01\x00" * 160
    with pytest.raises(ProtocolError, match="lacks played"):
        check_phone_message(Message("cleared", {"call": 1}))
    with pytest.raises(ProtocolError, match="unknown phone message"):
        check_phone_message(Message("transcribe", {}))
    with pytest.raises(ProtocolError, match="expected a init"):
        check_phone_message(Message("audio", {"call": 1}), "init")


def test_heard_is_whole_sentences_then_a_share_of_the_playing_one():
    sentences = [_Sentence("One two three.", 0, 8000), _Sentence("Four five six seven.", 8000,
                                                                 16000)]
    assert _heard(sentences, 0) == ""
    assert _heard(sentences, 8000) == "One two three."
    assert _heard(sentences, 12000) == "One two three. Four five"
    assert _heard(sentences, 99999) == "One two three. Four five six seven."
    # A sentence still being made (no audio sent yet) was not heard.
    assert _heard([_Sentence("Not yet.", 0, 0)], 0) == ""


def test_a_long_first_sentence_is_cut_after_five_words_then_in_growing_pieces():
    long = "unless to be rather cold hearted and rather selfish is to be ill disposed"
    assert first_pieces(long, True) == ["unless to be rather cold",
                                      "hearted and rather selfish is to be ill disposed"]
    assert first_pieces(long, False) == [long]  # only the reply's first sentence
    assert first_pieces("go forward ten meters please now", True) == [
        "go forward ten meters please now"]
    # Then pieces twice as long while the rest is at least twice the next one.
    words = [f"w{i}" for i in range(60)]
    assert [len(p.split()) for p in first_pieces(" ".join(words), True)] == [5, 10, 20, 25]
    assert " ".join(first_pieces(" ".join(words), True)) == " ".join(words)


def test_a_replys_leading_silence_is_dropped_up_to_10_ms_before_its_first_sound():
    rng = np.random.default_rng(3)
    sound = (rng.standard_normal(800) * 1000).astype(np.int16)  # about -30 dBFS
    hiss = (rng.standard_normal(560) * 20).astype(np.int16)  # about -64 dBFS: not sound
    assert lead_in(np.concatenate([hiss, sound])) == 560 - 80
    assert lead_in(sound) == 0
    assert lead_in(hiss) == 0  # nothing loud in it: nothing is dropped
    assert lead_in(np.zeros(40, np.int16)) == 0  # shorter than one window
    # The quiet end of a piece of a cut sentence (the join keeps 40 ms of it).
    assert quiet_tail(np.concatenate([sound, hiss, hiss[:30]])) == 590
    assert quiet_tail(sound) == 0
    assert quiet_tail(hiss) == 560


def test_jitter_buffer_setting_is_checked():
    with pytest.raises(ConfigError, match="jitter_buffer_ms"):
        PhoneAgent(echo=True, jitter_buffer_ms=10)
    with pytest.raises(ConfigError, match="jitter_buffer_ms"):
        PhoneAgent(echo=True, jitter_buffer_ms=True)  # type: ignore[arg-type]
    assert PhoneAgent(echo=True, jitter_buffer_ms=None).jitter_buffer_ms is None
    assert PhoneAgent(echo=True)._sip_settings()["jitter_buffer_ms"] == 40


@pytest.mark.parametrize("engines", [-1, True, 1.5])
def test_engines_setting_is_checked(engines):
    with pytest.raises(ConfigError, match="engines must be an int >= 0"):
        PhoneAgent(echo=True, engines=engines)


def test_echo_guard_drops_only_finals_that_repeat_the_reply():
    reply = "The train to London leaves from platform four in ten minutes."
    assert _echoes("the train to London leaves from platform four", reply)
    assert not _echoes("when does the next train leave", reply)
    assert not _echoes("London", reply)  # too short to tell
    assert not _echoes("the train to London leaves", "")


def _collect(result, workers):
    async def run():
        return [p async for p in reply_pieces(result, workers)]
    return asyncio.run(run())


def test_reply_pieces_accepts_every_kind_of_on_turn_result():
    workers = Workers("harken-phone-turn", 1)
    workers.start()
    try:
        def tokens():
            yield "Hel"
            time.sleep(0.05)  # an LLM waiting for its next token blocks only a hook thread
            yield "lo."

        async def atokens():
            yield "A"
            yield "B"

        async def coroutine():
            return "done"

        assert _collect("hi", workers) == ["hi"]
        assert _collect(None, workers) == []
        assert _collect(["a", "b"], workers) == ["a", "b"]
        assert _collect(tokens(), workers) == ["Hel", "lo."]
        assert _collect(atokens(), workers) == ["A", "B"]
        assert _collect(coroutine(), workers) == ["done"]
        with pytest.raises(TypeError, match="on_turn returned int"):
            _collect(42, workers)
        with pytest.raises(TypeError, match="on_turn yielded bytes"):
            _collect([b"x"], workers)
    finally:
        workers.close(1.0)


def test_workers_keep_order_and_close_bounded_with_a_stuck_hook():
    workers = Workers("harken-phone-hooks", 1, max_queued=4)
    workers.start()
    seen: list[int] = []
    futures = [workers.submit(seen.append, i) for i in range(3)]
    for f in futures:
        f.result(2)
    assert seen == [0, 1, 2]
    release = threading.Event()
    workers.submit(release.wait, 3.0)  # a hook that blocks
    queued = [workers.submit(seen.append, 9) for _ in range(4)]
    assert isinstance(queued[-1].exception(0), Exception)  # the 5th waiting job: queue full
    t0 = time.monotonic()
    workers.close(0.3)
    assert time.monotonic() - t0 < 1.0
    assert all(f.cancelled() for f in queued[:3])
    release.set()
    for thread in threading.enumerate():
        if thread.name == "harken-phone-hooks":
            thread.join(2)
    assert 9 not in seen


def test_timeline_finds_speech_spans_and_resamples():
    rate = 8000
    tone = (0.3 * 32767 * np.sin(np.arange(rate) * 2 * np.pi * 440 / rate)).astype(np.int16)
    audio = np.concatenate([np.zeros(rate, np.int16), tone, np.zeros(rate // 10, np.int16),
                            tone, np.zeros(rate, np.int16)])
    assert active_spans(audio) == [(1.0, 3.1)]  # a 100 ms gap joins
    assert active_spans(audio, min_gap_ms=50) == [(1.0, 2.0), (2.1, 3.1)]
    assert active_spans(np.zeros(10, np.int16)) == []
    wide = to_16k_float(audio)
    assert abs(len(wide) - 2 * len(audio)) <= 2
    back = to_8k_int16(wide)
    assert abs(len(back) - len(audio)) <= 2
    n = min(len(back), len(audio)) - 4
    assert np.corrcoef(back[:n].astype(float), audio[:n].astype(float))[0, 1] > 0.99
