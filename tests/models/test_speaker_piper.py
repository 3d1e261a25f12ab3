"""The Speaker with the real Piper voice (en_US-joe-medium) in its engine program.

What it says is read back by harken's own recorder (tiny.en); stop() and a SIGKILLed engine
are checked against the audio that actually reached the sink.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from harken import Recorder
from harken.speak import Speaker
from harken.testing import word_errors

pytestmark = [pytest.mark.model,
              pytest.mark.skipif(not __import__("importlib").util.find_spec("piper"),
                                 reason="piper-tts is not installed (harken[piper])")]

SENTENCES = [
    "Thank you for calling, how can I help you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Please hold the line while I transfer your call.",
    "Your appointment is on Tuesday morning at ten o'clock.",
    "I am sorry, I did not catch that.",
    "Could you spell your last name for me?",
    "The weather will be sunny with a light breeze.",
    "We will send the invoice to your email address.",
    "Turn left at the bakery and walk two blocks.",
    "Is there anything else I can do for you?",
    "The library closes early on public holidays.",
    "She bought apples, bread and a bottle of milk.",
    "Our office is closed for the weekend.",
    "Press one for sales or two for support.",
    "The train to the airport leaves every twenty minutes.",
    "Remember to bring your passport and your ticket.",
    "He painted the kitchen a bright shade of yellow.",
    "Your package was delivered this afternoon.",
    "Let me check that for you right away.",
    "Have a wonderful evening and goodbye.",
]


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.chunks: list[np.ndarray] = []
        self.times: list[float] = []

    def __call__(self, chunk: np.ndarray) -> None:
        with self.lock:
            self.chunks.append(chunk.copy())
            self.times.append(time.monotonic())

    def take(self) -> np.ndarray:
        with self.lock:
            audio = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
            self.chunks, self.times = [], []
            return audio


@pytest.fixture(scope="module")
def piper() -> tuple[Speaker, Sink]:
    sink = Sink()
    speaker = Speaker(engine="piper", sample_rate=16000, on_audio=sink, realtime=False)
    speaker.start()
    yield speaker, sink
    speaker.close()


def test_recorder_reads_back_twenty_sentences(piper) -> None:
    speaker, sink = piper
    pause = np.zeros(16000, np.float32)
    parts = [pause]
    for sentence in SENTENCES:
        report = speaker.say(sentence, timeout=60)
        assert report.complete
        parts += [sink.take(), pause]
    audio = np.concatenate(parts)
    with Recorder(source="push") as rec:
        for i in range(0, audio.size, 1600):
            rec.feed_audio(audio[i:i + 1600])
        rec.flush(120)
        rec.close()
        heard = " ".join(t.text for t in rec.transcripts())
    errors, words = word_errors(" ".join(SENTENCES), heard)
    assert errors / words <= 0.10, heard


def test_stop_mid_sentence_is_quick_and_the_report_matches_the_audio() -> None:
    sink = Sink()
    with Speaker(engine="piper", sample_rate=16000, on_audio=sink) as speaker:
        text = ("This is a long sentence that keeps going for quite a while so that we can "
                "stop it right in the middle of the words.")
        speaker.speak(text + " And here is another one that nobody will hear.")
        deadline = time.monotonic() + 60
        while sum(c.size for c in sink.chunks) < 16000 * 1.5:  # 1.5 s delivered
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stopped_at = time.monotonic()
        report = speaker.stop()
        time.sleep(0.3)
        assert all(t <= stopped_at + 0.05 for t in sink.times)
        delivered = sink.take()
    first, second = report.sentences
    assert first.text == text and second.delivered_samples == 0
    assert not first.complete and first.total_samples is not None
    # Samples are counted at the voice's 22.05 kHz; the sink got 16 kHz.
    assert abs(first.delivered_samples * 16000 / 22050 - delivered.size) <= 400
    n_words = len(report.delivered_text.split())
    assert 0 < n_words < len(text.split())
    assert abs(n_words - first.fraction * len(text.split())) <= 1


def test_engine_sigkilled_mid_sentence_sentence_arrives_whole() -> None:
    sink, errors = Sink(), []
    sentence = "The engine is killed while this sentence is being synthesised."
    with Speaker(engine="piper", sample_rate=16000, on_audio=sink, realtime=False,
                 on_error=errors.append) as speaker:
        assert speaker.say(sentence, timeout=60).complete
        reference = sink.take()
        handle = speaker.speak(sentence)
        host = speaker.host
        assert host is not None
        pid = host.pid
        time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        report = handle.wait(60)
        audio = sink.take()
        assert host.restarts == 1 and host.pid != pid
    # Whole, never garbled: about as long as the uninterrupted synthesis (Piper's noise
    # varies phoneme lengths a little), or an error event says it was not.
    if errors:
        assert not report.complete
    else:
        assert report.complete
        assert abs(audio.size - reference.size) <= 0.15 * reference.size
