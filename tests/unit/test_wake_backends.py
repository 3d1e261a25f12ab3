"""Wake word backends: phrase matching (pure), and Porcupine / openWakeWord on real speech.

Porcupine and openWakeWord run their real models on espeak-ng speech; they are fast
(well under real time) and need no faster-whisper, so they are not marked ``model``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harken.engine.base import DecodeHints
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
    "", "...", "Job is done.", "Hi, Harken circle, slowly among the open field.",
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
    assert PhraseWakeWord(("hey harken",)).max_edits("hey harken") == 1
    assert PhraseWakeWord(("hey harken",), sensitivity=1.0).max_edits("hey harken") == 3


def test_the_closest_phrase_wins() -> None:
    found = PhraseWakeWord(("hey harken", "hey hawk")).match("Hey Hawk, go")
    assert found is not None and found.phrase == "hey hawk" and found.remainder == "Go"


def test_request_hints_name_the_phrases_as_hotwords_and_prompt() -> None:
    assert PhraseWakeWord(("hey harken", "jarvis")).request_hints() == DecodeHints(
        hotwords="Hey Harken, Jarvis")
    assert PhraseWakeWord(("hey harken", "jarvis"), sensitivity=0.6).request_hints() == \
        DecodeHints(hotwords="Hey Harken, Jarvis", initial_prompt="Hey Harken. Jarvis.")


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


@pytest.mark.parametrize(("backend", "words", "sens"), [
    ("phrase", "hey harken", 0.5),
    ("phrase", "x", 0.5),  # fewer than 2 letters
    ("porcupine", "Jarvis,  COMPUTER", [0.3, 0.9]),
    ("porcupine", "hey harken", 0.5),
    ("porcupine", "/models/kw.ppn", 0.5),
    ("oww", "hey jarvis", 0.5),
    ("openwakeword", "jarvis", 0.5),
    ("openwakeword", "alexa, hey_mycroft", [0.5]),
    ("porcupine", "jarvis, computer", [0.5, 0.5, 0.5]),
    ("phrase", "jarvis", 1.5),
    ("nope", "jarvis", 0.5),
])
def test_the_config_accepts_exactly_what_builds(backend: str, words: str,
                                                sens: float | list[float]) -> None:
    """WakeConfig validates through wake/names.py, the factory builds through it: the two
    never disagree on a setting."""
    from harken.config import WakeConfig

    try:
        built = build_wake_backend(backend, words, sens)
    except ConfigError as exc:
        with pytest.raises(ConfigError) as caught:
            WakeConfig(words=words, backend=backend, sensitivity=sens)  # type: ignore[arg-type]
        assert str(caught.value).split(", got")[0] == str(exc).split(", got")[0]
        return
    config = WakeConfig(words=words, backend=backend, sensitivity=sens)  # type: ignore[arg-type]
    assert config.words == parse_wake_words(words)
    again = build_wake_backend(config.backend, config.words, config.sensitivity)
    assert type(again) is type(built)


def test_the_config_validates_wake_words_without_building_a_backend() -> None:
    code = ("import sys; from harken.config import WakeConfig; "
            "WakeConfig(words='jarvis', backend='porcupine'); "
            "print(sorted(m for m in sys.modules if m.startswith('harken.') and "
            "m.rsplit('.', 1)[-1] in ('factory', 'porcupine', 'openwakeword', 'phrase')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pvporcupine", None)
    monkeypatch.setitem(sys.modules, "pyopen_wakeword", None)
    with pytest.raises(BackendNotInstalled, match=r"pip install --no-deps pvporcupine==1.9.5"):
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


# -- settings and the Recorder (scripted engine: real threads and engine process) ----------

def test_recorder_settings_map_onto_wake_config() -> None:
    from harken import Recorder

    rec = Recorder(source="push", engine="scripted", wake_words="jarvis, computer",
                   wake_backend="pvporcupine", wake_sensitivity=[0.4, 0.6],
                   wake_timeout_s=3.0, wake_activation_delay_s=1.5)
    wake = rec.config.wake
    assert (wake.words, wake.backend, wake.sensitivity) == (
        ("jarvis", "computer"), "porcupine", (0.4, 0.6))
    assert (wake.timeout_s, wake.activation_delay_s, wake.enabled) == (3.0, 1.5, True)
    assert not Recorder(source="push", engine="scripted").config.wake.enabled


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"wake_words": "hey harken", "wake_backend": "porcupine"}, "not a built-in Porcupine"),
    ({"wake_words": "jarvis", "wake_backend": "snowboy"}, "unknown wake word backend"),
    ({"wake_words": " , "}, "no wake word given"),
    ({"wake_words": "jarvis", "wake_timeout_s": 0}, "timeout_s must be > 0"),
    ({"wake_words": "jarvis", "wake_sensitivity": 7}, "from 0 to 1"),
    ({"wake_word": "jarvis"}, "wake_words"),  # a typo lists the valid options
])
def test_recorder_rejects_bad_wake_settings(kwargs: dict[str, object], needle: str) -> None:
    from harken import Recorder

    with pytest.raises(ConfigError, match=needle):
        Recorder(source="push", engine="scripted", **kwargs)  # type: ignore[arg-type]


def test_recorder_start_fails_cleanly_without_the_backend(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from harken import Recorder

    monkeypatch.setitem(sys.modules, "pvporcupine", None)
    rec = Recorder(source="push", engine="scripted", vad="energy", wake_words="jarvis",
                   wake_backend="porcupine")
    with pytest.raises(BackendNotInstalled, match="porcupine"):
        rec.start()
    rec.close()


def test_recorder_phrase_wake_word_with_scripted_engine() -> None:
    """Phrase path through the real threads: every check answers the scripted text."""
    from harken import FinalTranscript, Recorder
    from harken.events import WakeWordDetected, WakeWordWaiting
    from harken.testing import ScriptedVad, silence, tone

    events: list[object] = []
    audio = np.concatenate([silence(0.5), tone(1.2), silence(1.5)])
    with Recorder(source="push", engine="scripted", vad_detector=ScriptedVad([(0.5, 1.7)]),
                  options={"text": "Jarvis, turn on the lights."}, wake_words="jarvis",
                  on_event=events.append) as rec:
        rec.feed_audio(audio)
        rec.flush(20)
        final = rec.next_final(5)
    assert final.text == "Turn on the lights."
    assert [type(e) for e in events if isinstance(
        e, (WakeWordWaiting, WakeWordDetected, FinalTranscript))] == [
        WakeWordWaiting, WakeWordDetected, FinalTranscript, WakeWordWaiting]


def test_recorder_porcupine_wake_word_on_espeak(espeak: Speak) -> None:
    """Porcupine through the Recorder: other speech is ignored, the command after the wake
    word is transcribed (scripted engine: it describes the audio it got)."""
    pytest.importorskip("pvporcupine")
    pytest.importorskip("webrtcvad")
    from harken import Recorder
    from harken.events import WakeWordDetected

    other = espeak("please remember to buy milk and bread")
    wake = espeak("jarvis", "en-us+f3", 150)
    command = espeak("turn on the lights in the kitchen")
    audio = np.concatenate([silence_s(0.5), other, silence_s(1.5), wake, silence_s(0.7),
                            command, silence_s(1.5)])
    events: list[object] = []
    with Recorder(source="push", engine="scripted", vad="webrtc", wake_words="jarvis",
                  wake_backend="porcupine", on_event=events.append) as rec:
        rec.feed_audio(audio)
        rec.flush(20)
    detected = [e for e in events if isinstance(e, WakeWordDetected)]
    from harken import FinalTranscript

    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert [d.word for d in detected] == ["jarvis"]
    wake_end = (0.5 + len(other) / S + 1.5 + len(wake) / S)
    assert wake_end - 0.3 < detected[0].time < wake_end + 0.7
    assert len(finals) == 1, finals
    assert finals[0].start >= detected[0].time
    duration = float(finals[0].text.split()[1])  # "speech 1.90 s rms ..."
    assert abs(duration - len(command) / S) < 0.7


def silence_s(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * S), np.float32)


# -- RealtimeSTT compatibility and the CLI --------------------------------------------------

def test_compat_maps_realtimestt_wake_arguments() -> None:
    from harken.compat import AudioToTextRecorder

    calls: list[str] = []
    rec = AudioToTextRecorder(
        use_microphone=False, wake_words="hey harken", wake_words_sensitivity=0.4,
        wake_word_timeout=3, wake_word_activation_delay=2,
        on_wakeword_detected=lambda: calls.append("detected"),
        on_wakeword_detection_end=lambda: calls.append("end"),
        on_wakeword_detection_start=lambda: calls.append("start"),
        on_wakeword_timeout=lambda: calls.append("timeout"))
    wake = rec._config.wake
    assert (wake.words, wake.backend, wake.sensitivity) == (("hey harken",), "phrase", 0.4)
    assert (wake.timeout_s, wake.activation_delay_s) == (3, 2)
    rec._callbacks["on_wake_word"]("hey harken")
    rec._callbacks["on_wake_word_waiting"]()
    rec._callbacks["on_wake_word_timeout"]()
    assert calls == ["detected", "end", "start", "timeout"]
    rec.shutdown()


def test_compat_backend_choice() -> None:
    from harken.compat import AudioToTextRecorder

    pytest.importorskip("pvporcupine")
    assert AudioToTextRecorder(use_microphone=False, wake_words="jarvis, computer"
                               )._config.wake.backend == "porcupine"  # RealtimeSTT's default
    oww = AudioToTextRecorder(use_microphone=False, wake_words="hey jarvis",
                              wakeword_backend="openwakeword")._config.wake
    assert (oww.backend, oww.words) == ("openwakeword", ("hey jarvis",))
    assert not AudioToTextRecorder(use_microphone=False)._config.wake.enabled
    with pytest.raises(ConfigError, match="not a built-in Porcupine"):
        AudioToTextRecorder(use_microphone=False, wake_words="hey harken",
                            wakeword_backend="pvporcupine")


def test_cli_wake_word_flags() -> None:
    from harken.cli.main import _listen_settings, build_parser

    args = build_parser().parse_args(["listen", "--wake-word", "jarvis", "--wake-backend",
                                      "porcupine", "--wake-timeout", "3"])
    settings = _listen_settings(args)
    assert (settings["wake_words"], settings["wake_backend"], settings["wake_timeout_s"]) == (
        "jarvis", "porcupine", 3.0)
    assert "wake_words" not in _listen_settings(build_parser().parse_args(["listen"]))
