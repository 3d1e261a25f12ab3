"""``harken stt-server`` takes every flag of RealtimeSTT 1.1.2's stt-server with its default
(read from stt_server.py with ast; importing it pulls torch)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from harken.cli.stt_server import build_parser

_SPEC = importlib.util.find_spec("RealtimeSTT_server")
pytestmark = pytest.mark.skipif(_SPEC is None, reason="RealtimeSTT (--no-deps) not installed")


def _their_flags() -> dict[tuple[str, ...], Any]:
    assert _SPEC is not None and _SPEC.origin is not None
    tree = ast.parse((Path(_SPEC.origin).parent / "stt_server.py").read_text())
    out: dict[tuple[str, ...], Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "add_argument":
            flags = tuple(ast.literal_eval(a) for a in node.args)
            kw = {k.arg: k.value for k in node.keywords}
            default: Any = None
            if "default" in kw:
                try:
                    default = ast.literal_eval(kw["default"])
                except ValueError:  # a constant name
                    default = {"DEACTIVITY_SILENCE_CONFIRMATION_DURATION": 0.16}[
                        ast.unparse(kw["default"])]
            elif "action" in kw and ast.literal_eval(kw["action"]) == "store_true":
                default = False
            out[flags] = default
    return out


def test_every_stt_server_flag_and_default() -> None:
    theirs = _their_flags()
    assert len(theirs) == 49
    parser = build_parser()
    ours = {flag: action for action in parser._actions for flag in action.option_strings}
    for flags, default in theirs.items():
        for flag in flags:
            assert flag in ours, flag
        assert ours[flags[0]].default == default, flags


def test_flags_map_onto_the_server_config() -> None:
    from harken.cli.stt_server import _config

    cfg = _config(build_parser().parse_args(
        ["-m", "tiny.en", "-l", "de", "-c", "9011", "-d", "9012", "--silero_sensitivity",
         "0.3", "--unknown_sentence_detection_pause", "0.9", "--root", "/tmp/m"]))
    assert (cfg.engine.model, cfg.engine.language, cfg.engine.download_root) == \
        ("tiny.en", "de", "/tmp/m")
    assert cfg.rtstt_ports == (9011, 9012)
    assert cfg.vad.silero_threshold == 0.7 and cfg.vad.post_speech_silence_ms == 900
    default = _config(build_parser().parse_args([]))
    assert default.rtstt_ports == (8011, 8012) and default.engine.device == "auto"


def test_sentence_pauses_map_onto_smart_turns() -> None:
    from harken.cli.stt_server import _config

    default = _config(build_parser().parse_args([]))
    assert default.vad.turn_detection == "fixed" and default.vad.post_speech_silence_ms == 700
    cfg = _config(build_parser().parse_args(
        ["--end_of_sentence_detection_pause", "0.3", "--unknown_sentence_detection_pause",
         "0.8", "--mid_sentence_detection_pause", "1.6"]))
    assert cfg.vad.turn_detection == "smart"
    assert (cfg.vad.min_silence_ms, cfg.vad.post_speech_silence_ms, cfg.vad.max_silence_ms) \
        == (300, 800, 1600)


def test_sentence_pauses_without_the_turn_model_say_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from harken.cli import stt_server
    from harken.errors import ConfigError, SmartTurnNotFound
    from harken.turn import smart_turn

    def missing() -> str:
        raise SmartTurnNotFound(["nowhere"])

    monkeypatch.setattr(smart_turn, "find_smart_turn_model", missing)
    with pytest.raises(ConfigError) as err:
        stt_server._config(build_parser().parse_args(["--mid_sentence_detection_pause", "3"]))
    message = str(err.value)
    assert "--mid_sentence_detection_pause=3.0" in message and "pipecat-ai" in message
    assert "--unknown_sentence_detection_pause" in message
    # the unknown pause alone is the fixed silence: no turn model needed
    cfg = stt_server._config(build_parser().parse_args(
        ["--unknown_sentence_detection_pause", "1.2"]))
    assert cfg.vad.turn_detection == "fixed" and cfg.vad.post_speech_silence_ms == 1200


def test_console_script_reports_errors_without_a_traceback(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Any) -> None:
    from harken.cli.stt_server import main

    assert main(["-m", str(tmp_path / "no-such-model"), "-c", "0", "-d", "0"]) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("harken-stt-server: ") and "no-such-model" in last
    assert "Traceback" not in err


def test_wake_flags_give_every_session_wake_words() -> None:
    from harken.cli.stt_server import _config

    assert not _config(build_parser().parse_args([])).rtstt_wake.enabled
    cfg = _config(build_parser().parse_args(
        ["-w", "hey harken", "--wake_words_sensitivity", "0.4", "--wake_word_timeout", "3",
         "--wake_word_activation_delay", "2"]))
    wake = cfg.rtstt_wake
    assert (wake.words, wake.backend, wake.sensitivity) == (("hey harken",), "phrase", 0.4)
    assert (wake.timeout_s, wake.activation_delay_s) == (3.0, 2.0)


def test_an_unavailable_wake_word_backend_stops_the_server_in_one_sentence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from harken.cli.stt_server import _config
    from harken.errors import BackendNotInstalled, ConfigError

    with pytest.raises(ConfigError, match="not a built-in Porcupine"):
        _config(build_parser().parse_args(["-w", "hey harken", "--wakeword_backend",
                                           "pvporcupine"]))
    monkeypatch.setitem(sys.modules, "pvporcupine", None)
    with pytest.raises(BackendNotInstalled, match="pvporcupine") as info:
        _config(build_parser().parse_args(["-w", "jarvis", "--wakeword_backend",
                                           "pvporcupine"]))
    assert str(info.value).count(". ") <= 1, str(info.value)
