"""Engine registry (names, class paths, availability) and the ScriptedEngine it builds."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from harken.config import EngineConfig
from harken.engine.base import DecodeHints, EngineOutput, TranscriptionEngine
from harken.engine.faster_whisper import FasterWhisperEngine, resolve_model
from harken.engine.registry import ENGINES, create_engine, resolve_engine
from harken.engine.scripted import ScriptedEngine
from harken.errors import ConfigError, LifecycleError


class EchoEngine:
    """A third-party engine found through a "module:Class" path."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def load(self) -> None:
        pass

    def transcribe(self, audio: np.ndarray, *, kind: str = "final",
                   hints: DecodeHints | None = None) -> EngineOutput:
        return EngineOutput(str(len(audio)))

    def close(self) -> None:
        pass


class NotAnEngine:
    def __init__(self, config: EngineConfig) -> None:
        pass


def test_registered_names() -> None:
    assert isinstance(create_engine(EngineConfig(engine="scripted")), ScriptedEngine)
    engine = create_engine(EngineConfig(engine="faster-whisper"))
    assert isinstance(engine, FasterWhisperEngine)
    assert isinstance(engine, TranscriptionEngine)
    assert set(ENGINES) == {"faster-whisper", "scripted"}


def test_class_path() -> None:
    engine = create_engine(EngineConfig(engine=f"{__name__}:EchoEngine"))
    assert isinstance(engine, EchoEngine)
    assert engine.config.engine == f"{__name__}:EchoEngine"


@pytest.mark.parametrize("name, match", [
    ("whisperx", "unknown engine 'whisperx': use one of faster-whisper, scripted"),
    ("no.such.module:Engine", "cannot import module 'no.such.module'"),
    (f"{__name__}:Missing", "has no attribute 'Missing'"),
    (f"{__name__}:NotAnEngine", "does not implement load"),
    ("bad path:X", "unknown engine"),
])
def test_bad_names_raise_config_error(name: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        create_engine(EngineConfig(engine=name))


def test_resolve_engine() -> None:
    assert resolve_engine("scripted") == "harken.engine.scripted:ScriptedEngine"
    assert resolve_engine("a.b:C") == "a.b:C"


def test_engine_available_imports_nothing() -> None:
    code = (
        "import sys\n"
        "from harken.engine.registry import engine_available\n"
        "print(engine_available('faster-whisper'), engine_available('scripted'),\n"
        "      engine_available('nope'), engine_available('no_such_pkg.x:Y'),\n"
        "      engine_available('json.decoder:JSONDecoder'))\n"
        "print(sorted(m for m in ('faster_whisper', 'ctranslate2', 'onnxruntime',\n"
        "                          'harken.engine.faster_whisper') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    installed = importlib.util.find_spec("faster_whisper") is not None
    assert out == [f"{installed} True False False True", "[]"]


def test_engine_available_without_faster_whisper() -> None:
    code = ("import sys; sys.modules['faster_whisper'] = None\n"
            "from harken.engine.registry import engine_available\n"
            "print(engine_available('faster-whisper'), engine_available('scripted'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


def test_scripted_describes_its_audio() -> None:
    engine = ScriptedEngine(EngineConfig(engine="scripted"))
    engine.load()
    audio = np.full(16000 + 8000, 0.25, dtype=np.float32)
    out = engine.transcribe(audio)
    assert out.text == "speech 1.50 s rms 0.250"
    assert [w.text for w in out.words] == ["speech", "1.50", "s", "rms", "0.250"]
    assert out.words[0].start == 0.0 and out.words[-1].end == pytest.approx(1.5)
    assert all(a.end <= b.start for a, b in zip(out.words, out.words[1:], strict=False))
    assert engine.transcribe(np.zeros(0, np.float32)).text == "speech 0.00 s rms 0.000"
    assert engine.calls == 2


def test_scripted_fixed_text_and_per_request_override() -> None:
    engine = ScriptedEngine(EngineConfig(engine="scripted", options={"text": "hello there"}))
    assert engine.transcribe(np.zeros(1600, np.float32)).text == "hello there"
    bye = DecodeHints(extra={"text": "bye"}, beam_size=2)
    assert engine.transcribe(np.zeros(1600, np.float32), hints=bye).text == "bye"
    assert engine.last_hints == bye
    with pytest.raises(ConfigError, match="text must be a string"):
        engine.transcribe(np.zeros(1600, np.float32), hints=DecodeHints(extra={"text": 5}))


def test_scripted_faults(tmp_path: object) -> None:
    failing = ScriptedEngine(EngineConfig(engine="scripted", options={"fail_load": "boom"}))
    with pytest.raises(RuntimeError, match="boom"):
        failing.load()
    engine = ScriptedEngine(EngineConfig(engine="scripted", options={"fail_min_s": 1.0}))
    assert engine.transcribe(np.zeros(15999, np.float32)).text.startswith("speech 1.00 s")
    with pytest.raises(RuntimeError, match="at least fail_min_s=1.0"):
        engine.transcribe(np.zeros(16000, np.float32))


@pytest.mark.parametrize("options, match", [
    ({"delay_s": -1}, "delay_s must be a number of seconds >= 0"),
    ({"load_delay_s": "slow"}, "load_delay_s must be a number"),
    ({"text": 5}, "text must be a string"),
    ({"crash_marker": True}, "crash_marker must be a string"),
])
def test_scripted_validates_options(options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ScriptedEngine(EngineConfig(engine="scripted", options=options))


def test_faster_whisper_engine_is_lazy_and_checks_paths(tmp_path: object) -> None:
    code = ("import sys\n"
            "from harken.config import EngineConfig\n"
            "from harken.engine.registry import create_engine\n"
            "create_engine(EngineConfig(model='./nowhere'))\n"
            "print('faster_whisper' in sys.modules, 'ctranslate2' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
    with pytest.raises(FileNotFoundError, match="model path .*nowhere.* does not exist"):
        resolve_model("./nowhere")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_model("~/no/such/model/dir")
    assert resolve_model("small.en") == "small.en"
    assert resolve_model(str(tmp_path)) == str(tmp_path)
    with pytest.raises(LifecycleError, match="before load"):
        FasterWhisperEngine(EngineConfig()).transcribe(np.zeros(10, np.float32))


def test_faster_whisper_engine_with_injected_model() -> None:
    class Seg:
        def __init__(self, text: str, words: list[object]) -> None:
            self.text, self.words = text, words

    class W:
        def __init__(self, start: float, end: float, word: str) -> None:
            self.start, self.end, self.word, self.probability = start, end, word, 0.5

    class Info:
        language, language_probability = "en", 0.9

    calls: list[dict[str, object]] = []

    class FakeModel:
        def transcribe(self, audio: np.ndarray, **kwargs: object) -> tuple[object, Info]:
            calls.append(kwargs)

            def segments() -> object:
                yield Seg(" Hello", [W(0.0, 0.4, " Hello")])
                yield Seg(" world. ", [W(0.5, 0.9, " world.")])
            return segments(), Info()

    config = EngineConfig(beam_size=2, options={"temperature": 0.0, "beam_size": 3})
    engine = FasterWhisperEngine(config, model=FakeModel())
    engine.load()  # an injected model needs no faster-whisper
    out = engine.transcribe(np.zeros(1600, np.float32), hints=DecodeHints(beam_size=1))
    assert out.text == "Hello world."
    assert [(w.text, w.start) for w in out.words] == [("Hello", 0.0), ("world.", 0.5)]
    assert calls[0]["beam_size"] == 1 and calls[0]["temperature"] == 0.0
    assert calls[0]["vad_filter"] is False and calls[0]["condition_on_previous_text"] is False
    assert engine.transcribe(np.zeros(0, np.float32)) == EngineOutput("")
    assert len(calls) == 1
