"""Wake word backends: phrase matching (pure), and Porcupine / openWakeWord on real speech.

Porcupine and openWakeWord run their real models on espeak-ng speech; they are fast
(well under real time) and need no faster-whisper, so they are not marked ``model``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harken.errors import BackendNotInstalled, ConfigError
from harken.wake import (
    OpenWakeWordDetector,
    PhraseWakeWord,
    PorcupineDetector,
    WakeWordDetector,
    build_wake_backend,
    normalize_backend,
    parse_wake_words,
)
from harken.wake.phrase import edit_distance, normalize

S = 16000
Speak = Callable[..., np.ndarray]


def frames_of(audio: np.ndarray) -> list[np.ndarray]:
    n = len(audio) // 512
    return [audio[i * 512:(i + 1) * 512] for i in range(n)]


def padded(audio: np.ndarray, before_s: float = 0.5, after_s: float = 1.0) -> np.ndarray:
    return np.concatenate([np.zeros(int(before_s * S), np.float32), audio,
                           np.zeros(int(after_s * S), np.float32)])


def hits(detector: WakeWordDetector, audio: np.ndarray) -> list[tuple[str, float]]:
    """(keyword, seconds at the end of the frame) for every frame with a hit."""
    out = []
    for i, frame in enumerate(frames_of(audio)):
        word = detector.process(frame)
        if word is not None:
            out.append((word, (i + 1) * 512 / S))
    return out


# -- phrase matching -----------------------------------------------------------------------

def test_normalize_and_distance() -> None:
    assert normalize("Hey, Harken!") == "heyharken"
    assert normalize("Café  Nº 5") == "cafeno5"
    assert edit_distance("jarvis", "jarvis") == 0
    assert edit_distance("jarvis", "harvis") == 1
    assert edit_distance("jarvis", "travis") == 3
    assert edit_distance("jarvis", "carvin") == 2
    assert edit_distance("", "abc") == 3


@pytest.mark.parametrize(("text", "phrase", "remainder"), [
    ("Hey Harken", "hey harken", ""),
    ("Hey, Harken!", "hey harken", ""),
    ("hay harken", "hey harken", ""),
    ("Hey Hawken.", "hey harken", ""),
    ("Heyharken, what time is it?", "hey harken", "What time is it?"),
    ("Hey Harken. What time is it?", "hey harken", "What time is it?"),
    ("Okay, hey harken, lights on", "hey harken", "Lights on"),
    ("Jarvis.", "jarvis", ""),
    ("Jarvis turn on the lights.", "jarvis", "Turn on the lights."),
    ("Harvis, turn on the lights.", "jarvis", "Turn on the lights."),
])
def test_phrase_matches(text: str, phrase: str, remainder: str) -> None:
    found = PhraseWakeWord(("hey harken", "jarvis")).match(text)
    assert found is not None, text
    assert (found.phrase, found.remainder) == (phrase, remainder)


@pytest.mark.parametrize("text", [
    "Have you heard it?", "Harvest the crops.", "Travis is here.", "Hey, how are you?",
    "Hey there.", "Hark, the herald angels sing.", "The weather is nice. Hey Harken.",
    "", "...", "Job is done.",
])
def test_phrase_rejects(text: str) -> None:
    assert PhraseWakeWord(("hey harken", "jarvis")).match(text) is None


def test_sensitivity_sets_the_letter_budget() -> None:
    exact = PhraseWakeWord(("jarvis",), sensitivity=0.0)
    assert exact.match("Jarvis!") is not None
    assert exact.match("Harvis") is None
    loose = PhraseWakeWord(("jarvis",), sensitivity=1.0)
    assert loose.max_edits("jarvis") == 2 and loose.match("Carvin") is not None
    assert PhraseWakeWord(("jarvis",)).match("Carvin") is None
    assert PhraseWakeWord(("hey harken",)).max_edits("hey harken") == 2


def test_the_closest_phrase_wins() -> None:
    found = PhraseWakeWord(("hey harken", "hey hawk")).match("Hey Hawk, go")
    assert found is not None and found.phrase == "hey hawk" and found.remainder == "Go"


def test_request_options_name_the_phrases_as_hotwords() -> None:
    assert PhraseWakeWord(("hey harken", "jarvis")).request_options() == {
        "hotwords": "Hey Harken, Jarvis"}


@pytest.mark.parametrize("kwargs", [
    {"phrases": ()}, {"phrases": "jarvis"}, {"phrases": ("!",)},
    {"phrases": ("jarvis",), "sensitivity": 1.5},
    {"phrases": ("jarvis",), "min_speech_s": 0.0},
    {"phrases": ("jarvis",), "min_speech_s": 7.0, "max_utterance_s": 6.0},
])
def test_phrase_config_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        PhraseWakeWord(**kwargs)  # type: ignore[arg-type]


# -- factory -------------------------------------------------------------------------------

def test_factory_names_and_words() -> None:
    assert parse_wake_words("jarvis, hey  harken ,") == ("jarvis", "hey harken")
    assert parse_wake_words(["computer"]) == ("computer",)
    assert normalize_backend("pvporcupine") == "porcupine"
    assert normalize_backend("OWW") == "openwakeword"
    assert isinstance(build_wake_backend("phrase", "hey harken"), PhraseWakeWord)
    assert isinstance(build_wake_backend("porcupine", "jarvis, computer", [0.6, 0.7]),
                      PorcupineDetector)
    oww = build_wake_backend("oww", "hey jarvis", 0.7)
    assert isinstance(oww, OpenWakeWordDetector) and oww.keywords == ("hey_jarvis",)


@pytest.mark.parametrize(("backend", "words", "sens", "needle"), [
    ("snowboy-ish", "jarvis", 0.5, "unknown wake word backend"),
    ("phrase", " , ", 0.5, "no wake word"),
    ("porcupine", "hey harken", 0.5, "jarvis"),  # the message lists the built-in keywords
    ("openwakeword", "jarvis", 0.5, "hey_jarvis"),
    ("porcupine", "jarvis, computer", [0.5, 0.5, 0.5], "one per wake word"),
    ("porcupine", "jarvis", 2.0, "from 0 to 1"),
])
def test_factory_errors_say_what_is_accepted(backend: str, words: str,
                                             sens: float | list[float], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_wake_backend(backend, words, sens)


def test_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pvporcupine", None)
    monkeypatch.setitem(sys.modules, "pyopen_wakeword", None)
    with pytest.raises(BackendNotInstalled, match=r"harken\[porcupine\]"):
        PorcupineDetector(["jarvis"]).load()
    with pytest.raises(BackendNotInstalled, match=r"harken\[openwakeword\]"):
        OpenWakeWordDetector(["hey_jarvis"]).load()


def test_missing_model_files_are_clear_errors(tmp_path: Path) -> None:
    pytest.importorskip("pvporcupine")
    pytest.importorskip("pyopen_wakeword")
    missing = str(tmp_path / "nope.ppn")
    with pytest.raises(ConfigError, match="does not exist"):
        PorcupineDetector([missing]).load()
    with pytest.raises(ConfigError, match="does not exist"):
        OpenWakeWordDetector([str(tmp_path / "nope.tflite")]).load()


# -- Porcupine on real speech --------------------------------------------------------------

@pytest.fixture
def porcupine() -> PorcupineDetector:
    """A fresh detector per test: Porcupine's internal window makes results depend on the
    audio heard before."""
    pytest.importorskip("pvporcupine")
    detector = PorcupineDetector(["jarvis", "computer"], 0.5)
    detector.load()
    yield detector  # type: ignore[misc]
    detector.close()
    detector.close()  # idempotent


def test_porcupine_protocol(porcupine: PorcupineDetector) -> None:
    assert isinstance(porcupine, WakeWordDetector)
    assert porcupine.keywords == ("jarvis", "computer")


# espeak-ng is a hard voice for Porcupine (see benchmarks/wake.py); these renderings it hears.
@pytest.mark.parametrize(("text", "voice", "speed", "word"), [
    ("jarvis what time is it", "en-us", 150, "jarvis"),
    ("jarvis", "en-us+f3", 150, "jarvis"),
    ("computer", "en-us+f3", 170, "computer"),
])
def test_porcupine_hears_espeak_keywords(porcupine: PorcupineDetector, espeak: Speak,
                                         text: str, voice: str, speed: int, word: str) -> None:
    speech = espeak(text, voice, speed)
    found = hits(porcupine, padded(speech))
    assert [w for w, _ in found] == [word], found
    # reported after the word began and within a second of the end of its audio
    assert 0.6 < found[0][1] < 0.5 + len(speech) / S + 1.0


def test_porcupine_stays_quiet_on_other_speech_and_noise(porcupine: PorcupineDetector,
                                                         espeak: Speak) -> None:
    rng = np.random.default_rng(7)
    audio = np.concatenate([
        padded(espeak("the weather will be sunny this afternoon")),
        padded(espeak("please remember to buy milk and bread", "en-gb+m3", 180)),
        (rng.standard_normal(3 * S) * 0.05).astype(np.float32),
    ])
    assert hits(porcupine, audio) == []


# -- openWakeWord on real speech -----------------------------------------------------------

@pytest.fixture(scope="module")
def oww() -> OpenWakeWordDetector:
    pytest.importorskip("pyopen_wakeword")
    detector = OpenWakeWordDetector(["hey_jarvis", "alexa"], 0.5)
    detector.load()
    yield detector  # type: ignore[misc]
    detector.close()
    detector.close()


@pytest.mark.parametrize(("voice", "speed"), [("en-us", 150), ("en", 190), ("en-gb+m3", 170)])
def test_openwakeword_hears_hey_jarvis_once(oww: OpenWakeWordDetector, espeak: Speak,
                                            voice: str, speed: int) -> None:
    assert isinstance(oww, WakeWordDetector)
    oww.reset()
    speech = espeak("hey jarvis", voice, speed)
    found = hits(oww, padded(speech))
    assert [w for w, _ in found] == ["hey_jarvis"], found  # once: the refractory time holds
    assert 0.6 < found[0][1] < 0.5 + len(speech) / S + 1.0


def test_openwakeword_stays_quiet_on_other_speech(oww: OpenWakeWordDetector,
                                                  espeak: Speak) -> None:
    oww.reset()
    rng = np.random.default_rng(3)
    speech = np.concatenate([
        padded(espeak("jarvis turn on the lights")),  # no "hey": another keyword model
        padded(espeak("the museum opens at nine in the morning", "en", 170)),
    ])
    noisy = speech + (rng.standard_normal(len(speech)) * 0.01).astype(np.float32)
    assert hits(oww, noisy) == []


def test_openwakeword_buffers_any_frame_count(oww: OpenWakeWordDetector, espeak: Speak) -> None:
    """1280-sample steps from 512-sample frames: the same hit whatever the alignment."""
    oww.reset()
    audio = padded(espeak("hey jarvis", "en-us", 160))
    first = hits(oww, audio)
    oww.reset()
    shifted = hits(oww, np.concatenate([np.zeros(300, np.float32), audio]))
    assert len(first) == len(shifted) == 1
    assert abs(first[0][1] - shifted[0][1]) <= 0.2
