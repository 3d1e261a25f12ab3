"""The Speaker with the tone engine in the real speech engine program (no model needed).

The tone engine beeps once per word (200 ms at 16 kHz), so what reached the sink can be
counted exactly; its ``delay_ms`` makes a sentence take time to synthesise.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
import wave

import numpy as np
import pytest

from harken.errors import ConfigError, EngineError, LifecycleError
from harken.speak import AsyncSpeaker, Speaker, SpeechEngineHost

WORD = 3200  # samples of one tone word at 16 kHz (200 ms)


class Collector:
    """An on_audio sink that records chunks and when they came."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, chunk: np.ndarray) -> None:
        with self.lock:
            self.chunks.append(chunk.copy())
            self.times.append(time.monotonic())

    @property
    def samples(self) -> int:
        with self.lock:
            return sum(c.size for c in self.chunks)


def tone_speaker(sink: Collector, **kwargs) -> Speaker:
    options = kwargs.pop("options", {})
    return Speaker(engine="tone", options=options, on_audio=sink, sample_rate=16000, **kwargs)


def test_speaks_every_word_in_order_in_small_chunks() -> None:
    sink = Collector()
    with tone_speaker(sink, realtime=False) as speaker:
        report = speaker.say("One two three. Four five.", timeout=30)
    assert report.complete and report.delivered_text == "One two three. Four five."
    assert [s.text for s in report.sentences] == ["One two three.", "Four five."]
    assert sink.samples == 5 * WORD
    assert max(c.size for c in sink.chunks) <= 320  # 20 ms chunks
    assert all(c.dtype == np.float32 for c in sink.chunks)
    audio = np.concatenate(sink.chunks)
    np.testing.assert_allclose(audio[:WORD], audio[WORD:2 * WORD], atol=1e-6)


def test_realtime_pacing_int16_and_resampling_to_8_khz() -> None:
    sink8 = Collector()
    with Speaker(engine="tone", on_audio=sink8, sample_rate=8000,
                 sample_format="int16") as speaker:
        started = time.monotonic()
        speaker.say("one two three four five", timeout=30)
        elapsed = time.monotonic() - started
    assert elapsed >= 0.8  # one second of audio, paced (at most 60 ms + a chunk ahead)
    assert all(c.dtype == np.int16 for c in sink8.chunks)
    assert abs(sink8.samples - 5 * WORD // 2) <= 80
    assert max(c.size for c in sink8.chunks) <= 200


def test_stop_mid_sentence_no_audio_after_and_report_matches_audio() -> None:
    sink = Collector()
    with tone_speaker(sink) as speaker:
        handle = speaker.speak("one two three four five six seven eight nine ten. Eleven.")
        while sink.samples < int(2.5 * WORD):
            time.sleep(0.005)
        stopped_at = time.monotonic()
        report = speaker.stop()
        returned = time.monotonic() - stopped_at
        time.sleep(0.3)
        late = [t - stopped_at for t in sink.times if t > stopped_at + 0.05]
        assert late == []
        assert returned < 0.05
        assert handle.done and handle.report.interrupted
        first = report.sentences[0]
        assert first.delivered_samples == sink.samples  # counted exactly what the sink got
        assert first.total_samples == 10 * WORD
        words = int(sink.samples / WORD + 0.5)
        assert report.delivered_text == " ".join("one two three four five six seven eight "
                                                 "nine ten.".split()[:words])
        assert report.sentences[1].delivered_samples == 0
        # The speaker goes on working after a stop.
        sink.chunks.clear()
        assert speaker.say("again", timeout=30).complete
        assert sink.samples == WORD


def test_engine_killed_mid_sentence_the_sentence_still_arrives_whole() -> None:
    sink = Collector()
    errors: list = []
    with tone_speaker(sink, options={"delay_ms": 60}, on_error=errors.append,
                      realtime=False) as speaker:
        host = speaker.host
        assert host is not None
        handle = speaker.speak("one two three four five six seven eight")
        while sink.samples < 2 * WORD:
            time.sleep(0.002)
        os.kill(host.pid, signal.SIGKILL)
        report = handle.wait(30)
        assert host.restarts == 1
    assert report.complete and errors == []
    assert sink.samples == 8 * WORD  # no word lost, none repeated
    audio = np.concatenate(sink.chunks)
    words = audio.reshape(8, WORD)
    np.testing.assert_allclose(words, np.broadcast_to(words[0], words.shape), atol=1e-6)


def test_engine_that_keeps_dying_reports_an_error_instead_of_silence() -> None:
    sink = Collector()
    errors: list = []
    with tone_speaker(sink, options={"delay_ms": 300}, on_error=errors.append,
                      realtime=False) as speaker:
        host = speaker.host
        assert host is not None
        handle = speaker.speak("one two three four")
        killed: set[int] = set()
        while not handle.done:
            pid = host.pid
            if pid is None or pid in killed or host.info.get("pid") != pid:
                time.sleep(0.01)  # wait for the replacement to be ready
                continue
            time.sleep(0.1)  # into the first word
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        assert len(killed) == 3
        with pytest.raises(Exception, match="died 3 times|crashed"):
            handle.wait(30)
    assert errors and errors[0].where == "engine"


def test_engine_error_reaches_on_error_and_wait_and_later_speech_goes_on() -> None:
    sink = Collector()
    errors: list = []
    with tone_speaker(sink, options={"fail_on": "boom"}, on_error=errors.append,
                      realtime=False) as speaker:
        bad = speaker.speak("this goes boom")
        good = speaker.speak("this is fine")
        with pytest.raises(EngineError, match="fail on 'boom'"):
            bad.wait(30)
        assert good.wait(30).complete
    assert len(errors) == 1 and errors[0].where == "engine"


def test_bad_input_empty_huge_and_unspeakable() -> None:
    sink = Collector()
    with tone_speaker(sink, options={"word_ms": 20}, realtime=False) as speaker:
        assert speaker.say("", timeout=10).sentences == ()
        assert speaker.say("\x00\x07 🙂🎉 \x1b", timeout=10).sentences == ()
        report = speaker.say("Hello\x00 there 🙂 friend.", timeout=10)
        assert report.delivered_text == "Hello there friend."
        huge = ("All work and no play makes Jack a dull boy. " * 2300)[:100_000]
        handle = speaker.speak(huge)
        time.sleep(0.5)
        assert not handle.done
        report = speaker.stop()
        assert report.interrupted and len(report.sentences) > 2000
        with pytest.raises(TypeError):
            speaker.speak(42)  # type: ignore[arg-type]


def test_bad_settings_are_refused_at_construction() -> None:
    with pytest.raises(ConfigError, match="sample_rate"):
        Speaker(engine="tone", sample_rate=44100)
    with pytest.raises(ConfigError, match="sample_format"):
        Speaker(engine="tone", sample_format="int8")
    with pytest.raises(ConfigError, match="speed"):
        Speaker(engine="tone", speed=0)
    with pytest.raises(ConfigError, match="installed voices: .*en-us"):
        Speaker("klingon", engine="espeak")
    with pytest.raises(ConfigError, match="unknown speech engine"):
        Speaker(engine="no such engine")
    with pytest.raises(ConfigError, match="not both"):
        Speaker(engine="tone", on_audio=print, sink="out.wav")
    speaker = Speaker(engine="tone")
    with pytest.raises(LifecycleError):
        speaker.speak("not started")
    speaker.close()
    speaker.close()


def test_wav_sink_and_iterator_sink(tmp_path) -> None:
    path = tmp_path / "out.wav"
    with Speaker(engine="tone", sink=path, sample_rate=24000) as speaker:
        speaker.say("one two", timeout=30)
    with wave.open(str(path)) as w:
        assert w.getframerate() == 24000 and w.getsampwidth() == 2
        assert abs(w.getnframes() - 2 * 4800) <= 48
    with Speaker(engine="tone", sample_rate=16000) as speaker:
        handle = speaker.speak("one two three")
        got = 0
        for chunk in speaker.chunks(timeout=10):
            got += chunk.size
            if got >= 3 * WORD:
                break
        assert handle.wait(10).complete
    assert got == 3 * WORD


def test_one_shared_host_serves_two_speakers() -> None:
    a, b = Collector(), Collector()
    with SpeechEngineHost(engine="tone") as host:
        with Speaker(host=host, on_audio=a, realtime=False) as sa, \
                Speaker(host=host, on_audio=b, realtime=False) as sb:
            ha, hb = sa.speak("one two three"), sb.speak("four five")
            assert ha.wait(30).complete and hb.wait(30).complete
        assert host.running  # the speakers do not close a host they share
    assert a.samples == 3 * WORD and b.samples == 2 * WORD
    with pytest.raises(LifecycleError, match="not running"):
        Speaker(host=host).start()


def test_plugin_engine_is_imported_only_in_the_engine_program(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_voice.py").write_text(
        "import numpy as np\n"
        "class Engine:\n"
        "    def __init__(self, voice, level=0.5):\n"
        "        self.level = level\n"
        "        self.sample_rate = 8000\n"
        "    def load(self):\n"
        "        pass\n"
        "    def synthesize(self, text, speed):\n"
        "        for word in text.split():\n"
        "            yield np.full(800, self.level, dtype=np.float32)\n"
        "    def close(self):\n"
        "        pass\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path),
                                                      os.environ.get("PYTHONPATH", "")]))
    sink = Collector()
    with Speaker("any", engine="my_voice:Engine", options={"level": 0.25}, on_audio=sink,
                 realtime=False) as speaker:
        assert speaker.sample_rate == 8000
        speaker.say("a b c", timeout=30)
    import sys

    assert "my_voice" not in sys.modules
    audio = np.concatenate(sink.chunks)
    assert audio.size == 2400 and np.allclose(audio, 0.25)
    with pytest.raises(EngineError, match="cannot load"):
        Speaker(engine="no_such_module:Engine").start()


def test_token_streams_sync_and_async() -> None:
    def tokens():
        for token in ["One", " two", ".", " Three", " four", "."]:
            time.sleep(0.01)
            yield token

    sink = Collector()
    with tone_speaker(sink, realtime=False) as speaker:
        assert speaker.say(tokens(), timeout=30).delivered_text == "One two. Three four."

        async def atokens():
            for token in ["Five", " six", " seven", "."]:
                await asyncio.sleep(0.01)
                yield token

        assert speaker.say(atokens(), timeout=30).delivered_text == "Five six seven."

        def broken():
            yield "fine so far"
            raise RuntimeError("the LLM stream broke")

        with pytest.raises(RuntimeError, match="stream broke"):
            speaker.say(broken(), timeout=30)
    assert sink.samples == 7 * WORD


def test_async_speaker_streams_tokens_and_chunks() -> None:
    async def main() -> tuple[int, str]:
        async def tokens():
            for token in ["Hello", " there", " my", " friend", "."]:
                await asyncio.sleep(0.01)
                yield token

        async with AsyncSpeaker(engine="tone", sample_rate=16000) as speaker:
            handle = speaker.speak(tokens())
            got = 0
            async for chunk in speaker.chunks():
                got += chunk.size
                if got >= 4 * WORD:
                    break
            report = await handle.wait(10)
            stopped = await speaker.stop()
            assert stopped.sentences == ()
            return got, report.delivered_text

    got, text = asyncio.run(main())
    assert got == 4 * WORD and text == "Hello there my friend."


def test_espeak_voice_streams_real_speech_in_another_language() -> None:
    sink = Collector()
    with Speaker("de", engine="espeak", on_audio=sink, realtime=False) as speaker:
        assert speaker.sample_rate == 22050
        report = speaker.say("Guten Morgen. Wie geht es dir heute?", timeout=30)
    assert report.complete and len(report.sentences) == 2
    audio = np.concatenate(sink.chunks)
    assert 1.5 < audio.size / 22050 < 6.0
    assert float(np.sqrt(np.mean(audio ** 2))) > 0.02
    assert report.sentences[0].total_samples + report.sentences[1].total_samples == \
        audio.size


def test_a_hung_engine_is_killed_restarted_and_the_sentence_reported() -> None:
    sink = Collector()
    errors: list = []
    with SpeechEngineHost(engine="tone", options={"hang_on": "stuck"},
                          request_timeout_s=0.5) as host:
        with Speaker(host=host, on_audio=sink, on_error=errors.append,
                     realtime=False) as speaker:
            started = time.monotonic()
            stuck = speaker.speak("this is stuck")
            with pytest.raises(Exception, match="sent nothing for"):
                stuck.wait(30)
            assert time.monotonic() - started < 15  # three tries of about half a second
            assert speaker.say("this works", timeout=30).complete
        assert host.restarts == 3 and host.running
    assert [e.where for e in errors] == ["engine"]
    assert sink.samples == 2 * WORD
