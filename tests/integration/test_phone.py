"""The phone agent's lifecycle and faults, with real SIP (baresip on 127.0.0.1) and a real
SIP program, a scripted engine (it answers "speech 1.23 s rms 0.100") and the energy VAD,
so these run fast without a model. test_phone_model.py has the real recognizer."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
from phone_helpers import (
    Recorded,
    call,
    clip,
    free_udp_port,
    need_phone,
    script,
    silence,
    wait_call_over,
    wait_for,
)

from harken.config import EngineConfig, VadConfig
from harken.errors import ConfigError, PhoneError
from harken.events import FinalTranscript
from harken.phone import PhoneAgent, SpeakerVoice
from harken.phone.call import PhoneCall
from harken.phone.timeline import active_spans

SCRIPTED = EngineConfig(engine="scripted", model="none")
ENERGY = VadConfig(backend="energy")


def make_agent(record: Recorded | None = None, **kwargs) -> PhoneAgent:
    need_phone()
    hooks = record.hooks() if record is not None else {}
    kwargs.setdefault("echo", True)
    kwargs.setdefault("voice", SpeakerVoice(engine="espeak"))
    return PhoneAgent(listen=f"127.0.0.1:{free_udp_port()}", engine=kwargs.pop(
        "engine", SCRIPTED), vad=kwargs.pop("vad", ENERGY),
        rtp_port=30000 + free_udp_port() % 1000 * 16, **hooks, **kwargs)


@pytest.fixture(scope="module")
def shared():
    """One agent for the tests that do not break it; rejects callers named "reject"."""
    need_phone()
    record = Recorded()
    agent = make_agent(record, on_call=lambda c: "reject@" not in c.remote_uri)
    agent.record = record  # type: ignore[attr-defined]
    agent.start()
    yield agent
    agent.close()


def _ended_after(agent, before: set[int], timeout: float = 15.0):
    record = agent.record
    wait_for(lambda: set(record.ended) - before, timeout, "the call's end")
    return record.ended[max(set(record.ended) - before)]


def test_caller_hangs_up_mid_utterance_and_the_words_still_count(shared, tmp_path):
    audio, _ = script(0.5, "austen_0870")  # baresip hangs up when its WAV ends: mid-speech
    before = set(shared.record.ended)
    caller = call(shared.uri, audio[:int(8000 * 4.0)], tmp_path / "c")
    wait_call_over(caller, 30)
    done = _ended_after(shared, before)
    assert done.state == "ended" and done.turns, "the cut utterance was not transcribed"
    assert done.turns[-1].startswith("speech 3.")  # the scripted engine names its length


def test_the_engine_is_asked_for_no_word_timings(shared, tmp_path, monkeypatch):
    # A call uses only the text: its finals come without words (the scripted engine, like
    # faster-whisper, leaves them out only when the request's hints say word_timestamps
    # False), so the real engine skips its alignment pass.
    finals: list[FinalTranscript] = []
    original = PhoneCall._final

    def spy(call, event):
        finals.append(event)
        original(call, event)

    monkeypatch.setattr(PhoneCall, "_final", spy)
    audio, _ = script(0.5, "goforward", 2.0)
    before = set(shared.record.ended)
    wait_call_over(call(shared.uri, audio, tmp_path / "c"), 30)
    _ended_after(shared, before)
    assert finals and all(f.text.startswith("speech ") for f in finals), finals
    assert [f.words for f in finals] == [()] * len(finals)


def test_calls_share_the_engine_programs_asked_for(tmp_path):
    record = Recorded()
    agent = make_agent(record, engines=2)
    audio, _ = script(0.5, "goforward", 2.0)
    with agent:
        wait_call_over(call(agent.uri, audio, tmp_path / "c"), 30)
        (done,) = wait_for(lambda: list(record.ended.values()), 15, "the call's end")
        engines = agent._engine_host.engines  # type: ignore[union-attr]
    assert [e["state"] for e in engines] == ["ok", "ok"], engines
    assert sum(e["answered"] for e in engines) >= 1, engines
    assert done.turns and done.turns[0].startswith("speech "), done.turns


def test_caller_hangs_up_mid_reply(shared, tmp_path):
    audio, _ = script(0.5, "austen_0870", 1.2)  # the reply starts, then the caller is gone
    before = set(shared.record.ended)
    errors = len(shared.record.errors)
    caller = call(shared.uri, audio, tmp_path / "c")
    wait_call_over(caller, 30)
    done = _ended_after(shared, before)
    assert done.replies, "no reply was started"
    assert len(shared.record.errors) == errors, shared.record.errors[errors:]
    assert not done.speaking


@pytest.mark.parametrize("most_ms", [40, 100])
def test_the_receive_jitter_buffer_holds_no_more_than_jitter_buffer_ms(most_ms, tmp_path,
                                                                      caplog):
    # The SIP program's debug log reads PJMEDIA's own statistics of the caller's stream.
    caplog.set_level(logging.DEBUG, logger="harken.phone")
    caplog.set_level(logging.DEBUG, logger="harken.worker.child")
    agent = make_agent(jitter_buffer_ms=most_ms)
    audio, _ = script(0.5, "goforward", 3.0)
    with agent:
        caller = call(agent.uri, audio, tmp_path / "c")
        wait_call_over(caller, 30)
        wait_for(lambda: agent.finished_calls, 15, "the call's end")
    stats = [re.search(r"prefetch (\d+) frames \(bounds (\d+)-(\d+)\)", r.getMessage())
             for r in caplog.records if "incoming jitter buffer" in r.getMessage()]
    bounds = {(int(m.group(2)), int(m.group(3))) for m in stats if m}
    # In frames of G.711's 10 ms (two to a packet): from 20 ms to most_ms (PJMEDIA's
    # default: 1-40, up to 400 ms).
    assert bounds == {(2, most_ms // 10)}, bounds
    assert max(int(m.group(1)) for m in stats if m) <= most_ms // 10


def test_on_call_can_reject(shared, tmp_path):
    audio, _ = script(0.5, "goforward", 2.0)
    caller = call(shared.uri, audio, tmp_path / "c", user="reject")
    wait_call_over(caller, 20)
    assert "486" in caller.log or "Busy" in caller.log, caller.log[-800:]


def test_no_codec_in_common_is_refused(shared, tmp_path):
    audio, _ = script(0.5, "goforward", 2.0)
    before = set(shared.record.started)
    caller = call(shared.uri, audio, tmp_path / "c", codecs=("g722",))
    wait_call_over(caller, 20)
    assert "488" in caller.log or "Not Acceptable" in caller.log, caller.log[-800:]
    assert set(shared.record.started) == before
    assert shared._sip is not None and shared.wait(0) is False  # still serving


def test_port_in_use_is_one_clear_sentence():
    need_phone()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        agent = PhoneAgent(echo=True, listen=f"127.0.0.1:{port}", engine=SCRIPTED, vad=ENERGY,
                           voice=SpeakerVoice(engine="espeak"))
        with pytest.raises(PhoneError, match=rf"UDP 127.0.0.1:{port} is already in use"):
            agent.start()
        agent.close()


@pytest.mark.parametrize("kwargs", [{"register": "sip:bot@@pbx"}, {"register": "bot@pbx"},
                                    {"registrar": "http://pbx"}, {"listen": "127.0.0.1"},
                                    {"listen": "127.0.0.1:70000"}])
def test_malformed_addresses_fail_at_construction(kwargs):
    with pytest.raises(ConfigError, match="SIP URI|host:port"):
        PhoneAgent(echo=True, **kwargs)


def test_a_preemptive_reply_to_a_pause_is_dropped_when_the_caller_goes_on(tmp_path):
    """Pauses of 0.4 s (early finals, well under the 0.9 s that ends a turn here): on_turn
    runs on each preview, but only the reply to the whole utterance is said.

    The margin is for load: a caller (or SIP program) that is not scheduled for a while
    leaves the jitter buffer empty, and PJMEDIA plays silence meanwhile, so a pause arrives
    longer than it was sent (measured: baresip stopped for 0.2 s in a 0.4 s pause made
    11 empty frames and two turns with the default 0.5 s; a 0.3 s stop, one turn with 0.9 s).
    """
    seen: list[str] = []

    def on_turn(c, text):
        seen.append(text)
        return f"you said {text}"

    record = Recorded()
    agent = make_agent(record, on_turn=on_turn, echo=False, preemptive=True,
                       vad=VadConfig(backend="energy", post_speech_silence_ms=900))
    pcm, _ = clip("goforward")
    spans = active_spans(pcm)
    words = pcm[int(spans[0][0] * 8000):int(spans[-1][1] * 8000)]
    audio = np.concatenate([silence(0.5), words, silence(0.4), words, silence(0.4), words,
                            silence(5.0)])
    with agent:
        caller = call(agent.uri, audio, tmp_path / "c")
        wait_call_over(caller, 40)
        (done,) = wait_for(lambda: list(record.ended.values()), 15, "the call's end")
    assert len(done.turns) == 1, done.turns
    assert done.replies == [f"you said {done.turns[0]}"], (done.replies, seen)
    assert len(seen) >= 2 and seen[-1] == done.turns[0], seen  # previews were made
    heard = active_spans(caller.heard(), min_gap_ms=300)
    assert len(heard) == 1, heard  # one reply was heard, none for the pauses


def test_smart_turns_end_the_callers_turn(tmp_path):
    """turn_detection="smart" (the Smart Turn model ends the turn): each call gets the
    model, the caller's turn ends and is answered, and no call reports an error."""
    record = Recorded()
    agent = make_agent(record, vad=VadConfig(backend="energy", turn_detection="smart"))
    with agent:
        caller = call(agent.uri, script(0.5, "austen_0880", 4.0)[0], tmp_path / "c")
        wait_call_over(caller, 40)
        (done,) = wait_for(lambda: list(record.ended.values()), 15, "the call's end")
    assert not record.errors, record.errors
    assert done.turns and done.replies == done.turns, (done.turns, done.replies)


class _SlowVoice:
    """espeak-ng whose first audio comes 0.8 s late (a loaded Piper): the final confirms a
    preemptive reply before its audio exists."""

    def __init__(self) -> None:
        self.inner = SpeakerVoice(engine="espeak")

    async def start(self) -> None:
        await self.inner.start()

    async def sentence(self, text):
        await asyncio.sleep(0.8)
        async for chunk in self.inner.sentence(text):
            yield chunk

    async def close(self) -> None:
        await self.inner.close()


def test_a_preemptive_reply_confirmed_before_its_audio_is_said_and_recorded(tmp_path):
    record = Recorded()
    agent = make_agent(record, voice=_SlowVoice())
    assert agent.preemptive  # on with echo
    audio, _ = script(0.5, "austen_0880", 4.0, "goforward", 4.0)
    with agent:
        caller = call(agent.uri, audio, tmp_path / "c")
        wait_call_over(caller, 40)
        (done,) = wait_for(lambda: list(record.ended.values()), 15, "the call's end")
    assert len(done.turns) == 2 and done.replies == done.turns, (done.turns, done.replies)
    assert len(active_spans(caller.heard(), min_gap_ms=300)) == 2


class _PaddedVoice:
    """A tone voice that pads every piece with 200 ms of silence on both sides (as Piper
    pads its sentences) and notes when each piece is asked for and finished."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    async def start(self) -> None:
        pass

    async def sentence(self, text):
        self.log.append(("asked", text))
        await asyncio.sleep(0.3)  # synthesis
        t = np.arange(int(0.15 * 8000 * len(text.split()))) / 8000
        tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
        pad = np.zeros(1600, np.int16)
        yield np.concatenate([pad, tone, pad])
        self.log.append(("made", text))

    async def close(self) -> None:
        pass


def test_a_long_first_sentence_is_made_ahead_and_joined_without_the_voices_silence(tmp_path):
    voice = _PaddedVoice()
    sentence = "one two three four five six seven eight nine ten eleven."
    agent = make_agent(on_turn=lambda call, text: sentence, echo=False, voice=voice)
    audio, _ = script(0.5, "goforward", 5.0)
    with agent:
        caller = call(agent.uri, audio, tmp_path / "c")
        wait_call_over(caller, 30)
        wait_for(lambda: agent.finished_calls, 15, "the call's end")
    # The rest of the sentence was asked for before the first words were made.
    assert voice.log[:3] == [("asked", "one two three four five"),
                             ("asked", "six seven eight nine ten eleven."),
                             ("made", "one two three four five")], voice.log
    # Heard as one sound: the pads at the join (400 ms) are gone, and the first one too.
    spans = active_spans(caller.heard(), min_gap_ms=100)
    assert len(spans) == 1, spans
    assert 1.6 < spans[0][1] - spans[0][0] < 1.85, spans  # 11 words of 0.15 s, one short gap


def test_dtmf_digits_reach_on_dtmf_in_order(shared, tmp_path):
    before = set(shared.record.started)
    caller = call(shared.uri, silence(8.0), tmp_path / "c", control=True)
    try:
        (call_id,) = wait_for(lambda: set(shared.record.started) - before, 15, "the call")
        answer = caller.command("sndcode", "19*#05")
        digits = wait_for(lambda: len(shared.record.dtmf.get(call_id, [])) >= 6 and
                          shared.record.dtmf[call_id], 10, f"6 digits (baresip: {answer!r})")
    finally:
        caller.close()
    assert digits == list("19*#05")


def test_transfer_moves_the_caller_to_the_target_and_a_refusal_reaches_on_error(tmp_path):
    """Real REFER: baresip places the call to a second agent; when that agent refuses it
    (486), the first agent's on_error hears so and the call goes on."""
    target_record, record = Recorded(), Recorded()
    target = make_agent(target_record, on_call=lambda c: "busy@" not in c.local_uri)
    remotes: list[str] = []

    def on_turn(c, text):
        who = "busy" if "busy@" in c.remote_uri else "desk"
        c.transfer(f"sip:{who}@{target.address}")

    agent = make_agent(record, on_turn=on_turn, echo=False)
    with target, agent:
        caller = call(agent.uri, script(0.5, "goforward", 8.0)[0], tmp_path / "ok")
        wait_for(lambda: target_record.started, 20, "the transferred call at the target")
        remotes = [c.remote_uri for c in target.calls]
        (first,) = wait_for(lambda: list(record.ended.values()), 15, "the first call's end")
        caller.close()
        busy = call(agent.uri, script(0.5, "goforward", 8.0)[0], tmp_path / "busy",
                    user="busy")
        wait_for(lambda: record.errors, 20, "the failed transfer's error")
        still = [c.state for c in agent.calls if "busy@" in c.remote_uri]
        busy.close()
    assert first.transferred is not None and first.transferred.startswith("200"), first
    assert any("caller@" in r for r in remotes), remotes
    error, failed = record.errors[0]
    assert isinstance(error, PhoneError), error
    assert "486" in str(error) and f"sip:busy@{target.address}" in str(error), error
    assert failed is not None and failed.transferred.startswith("486")
    assert still == ["active"]  # the refused transfer left the call up


def test_transfer_to_a_malformed_uri_raises(shared, tmp_path):
    seen = []

    def on_turn(call, text):
        try:
            call.transfer("not a uri")
        except ConfigError as exc:
            seen.append(str(exc))
        return None

    agent = make_agent(Recorded(), on_turn=on_turn, echo=False)
    with agent:
        caller = call(agent.uri, script(0.5, "goforward", 2.0)[0], tmp_path / "c")
        wait_call_over(caller, 20)
        wait_for(lambda: seen, 10, "the hook")
    assert "transfer target 'not a uri' is not a SIP URI" in seen[0]


def test_agent_closed_mid_call_hangs_up_within_two_seconds(tmp_path):
    record = Recorded()
    agent = make_agent(record)
    agent.start()
    caller = call(agent.uri, script(0.5, "austen_0870", 10.0)[0], tmp_path / "c")
    try:
        wait_for(lambda: record.started, 10, "the call")
        time.sleep(1.0)
        t0 = time.monotonic()
        agent.close()
        assert time.monotonic() - t0 < 2.0
        wait_call_over(caller, 5)
        assert "terminated" in caller.log  # baresip got the BYE
    finally:
        caller.close()
        agent.close()


def test_sip_program_killed_mid_call_reaches_the_user(tmp_path):
    record = Recorded()
    agent = make_agent(record)
    agent.start()
    caller = call(agent.uri, script(0.5, "austen_0870", 10.0)[0], tmp_path / "c")
    try:
        wait_for(lambda: record.started, 10, "the call")
        os.kill(agent._sip.pid, signal.SIGKILL)
        with pytest.raises(PhoneError, match="SIP program ended unexpectedly.*SIGKILL"):
            agent.wait(10)
        assert any(isinstance(e, PhoneError) for e, _ in record.errors)
        wait_for(lambda: record.ended, 10, "the call's end")
    finally:
        caller.close()
        agent.close()


def test_engine_killed_mid_call_loses_no_turn(tmp_path):
    import psutil

    record = Recorded()
    agent = make_agent(record, engine=EngineConfig(engine="scripted", model="none",
                                                   options={"delay_s": 1.0}))
    others = {p.pid for p in psutil.Process().children(recursive=True)}
    agent.start()
    audio, _ = script(0.5, "goforward", 2.5, "austen_0880", 5.0)
    caller = call(agent.uri, audio, tmp_path / "c")
    try:
        wait_for(lambda: record.started, 10, "the call")
        (engine,) = [p for p in psutil.Process().children(recursive=True)
                     if "harken.worker" in p.cmdline() and p.pid not in others]
        # Kill it while it holds the first final (delay_s keeps it there for 1 s).
        host = agent._engine_host
        wait_for(lambda: host.in_engine, 10, "a request in the engine")
        engine.kill()
        wait_call_over(caller, 30)
        wait_for(lambda: record.ended, 15, "the call's end")
        (done,) = record.ended.values()
        assert len(done.turns) == 2, done.turns
        assert host.restarts >= 1
    finally:
        caller.close()
        agent.close()


def test_speech_engine_killed_mid_reply_the_call_goes_on(tmp_path):
    record = Recorded()
    killed: list[int] = []

    def on_turn(call, text):
        yield "This is the first sentence of a long answer. "
        voice = call_voice[0]
        killed.append(voice.host.pid)
        os.kill(voice.host.pid, signal.SIGKILL)  # the speech engine program dies mid-reply
        yield "And this is the second sentence, said after a restart. "
        yield "And a third one."

    voice = SpeakerVoice(engine="espeak")
    call_voice = [voice]
    agent = make_agent(record, on_turn=on_turn, echo=False, voice=voice)
    agent.start()
    caller = call(agent.uri, script(0.5, "goforward", 12.0)[0], tmp_path / "c")
    try:
        wait_call_over(caller, 30)
        wait_for(lambda: record.ended, 15, "the call's end")
        (done,) = record.ended.values()
        assert killed and voice.host.restarts >= 1
        assert done.replies and "third one" in done.replies[0]
        # The whole reply was played, or the user heard why not.
        spans = active_spans(caller.heard(), min_gap_ms=150)
        assert len(spans) >= 3 or record.errors, (spans, record.errors)
    finally:
        caller.close()
        agent.close()


def test_ten_minutes_of_silence_keep_memory_bounded():
    """Pushed at the media layer, faster than real time: PhoneCall.audio() is what the SIP
    program's 20 ms frames reach; 10 minutes of silent frames go through VAD and pipeline."""
    need_phone()
    import asyncio

    from harken.config import RealtimeConfig
    from harken.phone.call import CallContext, PhoneCall, PhoneHooks
    from harken.phone.hooks import Workers
    from harken.server.engine_host import EngineHost
    from harken.server.vads import VadFactory

    async def run() -> tuple[int, int]:
        host = EngineHost(SCRIPTED)
        await host.start()
        vads = VadFactory(VadConfig())  # the default VAD (WebRTC + Silero), as on a call
        await asyncio.to_thread(vads.load)
        events, turns = Workers("harken-phone-hooks", 1), Workers("harken-phone-turn", 1)
        sent: list[str] = []
        ctx = CallContext(asyncio.get_running_loop(), lambda *a: sent.append(a[0]) or True,
                          host, vads, VadConfig(), RealtimeConfig(partials=False), None,
                          PhoneHooks(), events, turns, lambda e, c: sent.append(str(e)))
        call = PhoneCall(ctx, 1, "sip:caller@x", "sip:agent@x")
        call.media_started()
        frame = bytes(320)
        for _ in range(3000):  # a minute to warm up
            call.audio(frame, 0)
        gc.collect()
        tracemalloc.start()
        first, _ = tracemalloc.get_traced_memory()
        for i in range(30_000):  # 10 minutes of 20 ms frames
            call.audio(frame, 0)
            if i % 1000 == 0:
                await asyncio.sleep(0)
        gc.collect()
        last, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await call.ended(200, "bye")
        await host.close()
        events.close(1.0)
        turns.close(1.0)
        assert not [s for s in sent if s not in ("hangup",)], sent
        assert not call.turns
        return first, last

    first, last = asyncio.run(run())
    assert last - first < 2_000_000, f"memory grew by {(last - first) / 1e6:.1f} MB"


def test_cli_answers_and_ctrl_c_exits_within_two_seconds(tmp_path):
    need_phone()
    port = free_udp_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "harken", "phone", "--listen", f"127.0.0.1:{port}", "--echo",
         "--engine", "scripted", "--model", "none", "--vad", "energy",
         "--speech-engine", "espeak",
         "--rtp-port", str(30000 + port % 1000 * 16)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    with proc:
        _cli_call(proc, port, lines, tmp_path)


def _cli_call(proc, port, lines, tmp_path) -> None:
    try:
        wait_for(lambda: proc.poll() is not None or "answering calls" in (
            proc.stderr.readline() if proc.stderr else ""), 60, "the CLI to listen")
        assert proc.poll() is None
        caller = call(f"sip:agent@127.0.0.1:{port}", script(0.5, "goforward", 12.0)[0],
                      tmp_path / "c")
        try:
            while len(lines) < 2:
                line = proc.stdout.readline() if proc.stdout else ""
                assert line, "the CLI stopped printing"
                lines.append(line)
            assert lines[0].startswith("call 1 from ")
            assert lines[1].startswith("call 1 caller: speech ")
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(5) == 0
            assert time.monotonic() - t0 < 2.0
            wait_call_over(caller, 5)
            assert "terminated" in caller.log
        finally:
            caller.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()




class _Registrar:
    """A minimal SIP registrar on 127.0.0.1: challenges REGISTER (digest, MD5), checks the
    answer against ``password`` and says 200 or 403."""

    def __init__(self, password: str) -> None:
        import threading

        self.password = password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answers: list[int] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, name="test-registrar")
        self._thread.start()

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()

    def _serve(self) -> None:
        import hashlib
        import re

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        while not self._stop:
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            text = data.decode(errors="replace")
            if not text.startswith("REGISTER "):
                continue
            uri = text.split(" ", 2)[1]
            keep = [line for line in text.split("\r\n")
                    if line.split(":", 1)[0].lower() in ("via", "from", "to", "call-id",
                                                          "cseq", "contact")]
            auth = re.search(r"^Authorization:\s*Digest (.*)$", text, re.M | re.I)
            if auth is None:
                code, extra = 401, ['WWW-Authenticate: Digest realm="harken-test", '
                                    'nonce="n0nce", algorithm=MD5']
            else:
                fields = dict(re.findall(r'(\w+)="?([^",]*)"?', auth.group(1)))
                expected = md5(f"{md5(fields['username'] + ':harken-test:' + self.password)}"
                               f":n0nce:{md5('REGISTER:' + fields.get('uri', uri))}")
                code = 200 if fields.get("response") == expected else 403
                extra = ["Expires: 300"]
            self.answers.append(code)
            reason = {200: "OK", 401: "Unauthorized", 403: "Forbidden"}[code]
            lines = [f"SIP/2.0 {code} {reason}"] + [
                line + (";tag=reg1" if line.lower().startswith("to:") and "tag=" not in line
                        else "") for line in keep] + extra + ["Content-Length: 0", "", ""]
            self.sock.sendto("\r\n".join(lines).encode(), addr)


@pytest.mark.parametrize("password,ok", [("s3cret", True), ("wrong", False)])
def test_registration_with_digest_auth(password, ok):
    registrar = _Registrar("s3cret")
    record = Recorded()
    agent = make_agent(record, register=f"sip:bot@127.0.0.1:{registrar.port}",
                       password=password)
    try:
        agent.start()
        if ok:
            wait_for(lambda: agent.registration, 10, "the registration")
            assert agent.registration == "200 OK"
            assert registrar.answers[:2] == [401, 200]
        else:
            wait_for(lambda: record.errors, 10, "the failed registration")
            assert "registration failed: 403" in str(record.errors[0][0])
    finally:
        agent.close()
        registrar.close()
