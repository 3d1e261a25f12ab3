"""The speaker's pure parts: voice resolution, reports, unit bookkeeping, sinks, engines."""

from __future__ import annotations

import numpy as np
import pytest

from harken.errors import ConfigError
from harken.speak.engines.base import create_synthesis_engine, to_float32
from harken.speak.report import SentenceReport, SpeechReport
from harken.speak.sinks import CallbackSink, DeviceSink, IteratorSink, WavSink, make_sink
from harken.speak.utterance import Unit, Utterance
from harken.speak.voices import VoiceSpec, installed_voices, resolve_voice


def test_voices_resolve_and_unknown_ones_list_the_installed() -> None:
    spec = resolve_voice("espeak", "EN-US")
    assert spec == VoiceSpec("espeak", "en-us", {})
    assert VoiceSpec.from_dict(spec.to_dict()) == spec
    assert "de" in installed_voices("espeak") and "en-us" in installed_voices("espeak")
    with pytest.raises(ConfigError, match=r"unknown piper voice 'en_GB-nobody'; installed "
                                          r"voices: en_US-joe-medium"):
        resolve_voice("piper", "en_GB-nobody")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_voice("piper", "/no/such/voice.onnx")
    assert resolve_voice("my.pkg:Engine", "v", {"a": 1}) == VoiceSpec("my.pkg:Engine", "v",
                                                                      {"a": 1})
    for bad in ("", "no spaces allowed", "pkg:", ":Cls", 3):
        with pytest.raises(ConfigError):
            resolve_voice(bad)  # type: ignore[arg-type]
    assert resolve_voice(None).engine in ("piper", "espeak")


def test_sentence_report_estimates_the_words_heard() -> None:
    text = "one two three four five six seven eight nine ten"
    assert SentenceReport(text, 0, None, 100).delivered_text == ""
    cut = SentenceReport(text, 350, 1000, 100)
    assert (cut.fraction, cut.delivered_text, cut.complete) == (0.35, "one two three four",
                                                                 False)
    assert cut.delivered_s == 3.5
    whole = SentenceReport(text, 1000, 1000, 100)
    assert whole.complete and whole.delivered_text == text
    unknown_total = SentenceReport(text, 500, None, 100)  # still synthesising
    assert unknown_total.fraction == 1.0 and not unknown_total.complete
    report = SpeechReport((whole, cut, SentenceReport("never", 0, None, 100)),
                          interrupted=True)
    assert report.delivered_text == text + " one two three four"
    assert report.text == f"{text} {text} never"
    assert not report.complete and report.delivered_s == 13.5


def test_unit_restart_skips_what_was_already_taken() -> None:
    from harken.speak.cutter import TextCutter
    from harken.speak.report import SpeechHandle

    unit = Unit("x", Utterance(SpeechHandle(), TextCutter()))
    audio = np.arange(10, dtype=np.float32)
    unit.add(audio[:6])
    assert unit.take(4).tolist() == [0, 1, 2, 3]
    unit.restart()  # the engine died; it will send the sentence again from its start
    assert not unit.buffer and unit.skip == 4
    unit.add(audio[:3])
    unit.add(audio[3:])
    assert unit.take(100).tolist() == [4, 5, 6, 7, 8, 9]


def test_engine_chunks_are_normalised_and_plugins_checked() -> None:
    assert to_float32(np.array([16384, -32768], np.int16)).tolist() == [0.5, -1.0]
    assert to_float32(np.array([[np.nan, 2.0]], np.float64)).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError):
        to_float32(np.array([1, 2], np.int32))
    engine = create_synthesis_engine(VoiceSpec("tone", "beep", {"word_ms": 100}))
    chunks = list(engine.synthesize("a b", 2.0))
    assert [c.size for c in chunks] == [800, 800]
    with pytest.raises(ConfigError, match="lacks"):
        create_synthesis_engine(VoiceSpec("harken.speak.sinks:IteratorSink", "v", {}))


def test_sinks_are_chosen_from_the_arguments(tmp_path) -> None:
    assert isinstance(make_sink(None, print), CallbackSink)
    assert isinstance(make_sink(None, None), IteratorSink)
    assert isinstance(make_sink("device", None), DeviceSink)
    assert isinstance(make_sink(2, None), DeviceSink)
    assert isinstance(make_sink(tmp_path / "a.WAV", None), WavSink)
    assert not (tmp_path / "a.WAV").exists()  # nothing is created before open()
    for bad in ("speaker.mp3", 1.5, object()):
        with pytest.raises(ConfigError):
            make_sink(bad, None)
    with pytest.raises(ConfigError):
        make_sink("device", print)


def test_iterator_sink_waits_when_full_and_interrupt_empties_it() -> None:
    sink = IteratorSink(max_chunks=2)
    sink.write(np.zeros(1, np.float32))
    sink.write(np.ones(1, np.float32))
    assert sink.get(0.1).tolist() == [0.0]
    sink.interrupt()
    with pytest.raises(TimeoutError):
        sink.get(0.05)
    sink.write(np.ones(2, np.float32))
    sink.close()
    assert [c.size for c in sink.chunks(1.0)] == [2]


class FakeHost:
    """Records submits and cancels; stands in for SpeechEngineHost in SpeechQueue."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.cancelled: list[int] = []

    def submit(self, text, listener, *, speed=1.0) -> int:
        self.sent.append((len(self.sent) + 1, text))
        return len(self.sent)

    def cancel(self, request_id: int) -> None:
        self.cancelled.append(request_id)


def test_speech_queue_submits_ahead_delivers_in_order_and_recovers_a_restart() -> None:
    import threading

    from harken.speak.speech_queue import SpeechQueue

    host = FakeHost()
    queue = SpeechQueue(threading.Condition(threading.RLock()), lookahead=1, speed=1.0)
    queue.host, queue.native_rate = host, 100  # type: ignore[assignment]
    utterance = queue.open()
    queue.add_text(utterance, "One. Two. Three. Four.", last=True)
    assert queue.next_action(10) is None  # nothing synthesised yet
    assert [t for _, t in host.sent] == ["One.", "Two."]  # the playing one + 1 ahead
    queue.on_audio(2, np.ones(5, np.float32))  # the second arrives first: it waits its turn
    assert queue.next_action(10) is None
    queue.on_audio(1, np.arange(15, dtype=np.float32))
    unit, piece, epoch = queue.next_action(10)
    assert unit.text == "One." and piece.tolist() == list(range(10))
    queue.on_restart(1)  # the engine died: it starts sentence 1 again
    queue.on_audio(1, np.arange(15, dtype=np.float32))
    queue.on_done(1, 15)
    _, piece, _ = queue.next_action(10)
    assert piece.tolist() == list(range(10, 15))  # what was taken is not repeated
    assert queue.next_action(10)[1] is None  # sentence 1 ends
    queue.on_done(2, 5)
    assert queue.next_action(10)[0].text == "Two."
    assert [t for _, t in host.sent] == ["One.", "Two.", "Three."]  # one ahead again
    queue.on_failed(3, RuntimeError("boom"))
    assert queue.next_action(10)[1] is None
    assert queue.next_action(10) is None  # sentence 3 failed: the utterance fails
    assert utterance.finished and isinstance(utterance.error, RuntimeError)
    assert [e.where for e in queue.errors] == ["engine"]
    assert 4 in host.cancelled  # the failed utterance's later sentence leaves the engine
    other = queue.open()
    queue.add_text(other, "Five six.", last=True)
    queue.next_action(10)
    stopped = queue.clear()
    assert stopped == [other] and other.interrupted and queue.epoch == epoch + 1
    assert host.cancelled[-1] == host.sent[-1][0]
