"""The command line reads its defaults and choices from the config dataclasses."""

from __future__ import annotations

import argparse

import pytest

from harken.cli.main import build_parser
from harken.config import DEVICES, EngineConfig, VadConfig, WakeConfig
from harken.vad.backends import VAD_BACKENDS

# option dest -> (config object, field name)
SHARED = {
    "model": (EngineConfig(), "model"),
    "language": (EngineConfig(), "language"),
    "device": (EngineConfig(), "device"),
    "compute_type": (EngineConfig(), "compute_type"),
    "beam_size": (EngineConfig(), "beam_size"),
    "engine": (EngineConfig(), "engine"),
    "vad": (VadConfig(), "backend"),
    "silence_ms": (VadConfig(), "post_speech_silence_ms"),
}


def _action(parser: argparse.ArgumentParser, dest: str) -> argparse.Action:
    return next(a for a in parser._actions if a.dest == dest)


@pytest.mark.parametrize("command", [["transcribe", "x.wav"], ["listen"], ["serve"]])
def test_defaults_are_the_configs(command: list[str]) -> None:
    args = build_parser().parse_args(command)
    for dest, (config, name) in SHARED.items():
        assert getattr(args, dest) == getattr(config, name), dest


def test_wake_defaults_are_the_configs() -> None:
    args = build_parser().parse_args(["listen"])
    wake = WakeConfig()
    assert (args.wake_backend, args.wake_sensitivity, args.wake_timeout) == \
        (wake.backend, wake.sensitivity, wake.timeout_s)


def test_serve_defaults_are_the_server_configs() -> None:
    from harken.server.config import ServerConfig

    args = build_parser().parse_args(["serve"])
    server = ServerConfig()
    assert (args.host, args.port, args.max_sessions, args.max_audio_rate, args.drain_timeout) \
        == (server.host, server.port, server.max_sessions, server.max_audio_rate,
            server.drain_timeout_s)
    assert (args.fast_finals_at or None) == server.fast_finals_at


@pytest.mark.parametrize("flags", [[], ["--no-partials"]])
def test_serve_builds_the_server_realtime_defaults(flags: list[str]) -> None:
    """`harken serve` gives OpenAI Realtime sessions their endpoint's settings (stable words
    bound into the final) and the other protocols the library's; --no-partials changes only
    the partials."""
    from harken.cli.serve import _config
    from harken.config import RealtimeConfig

    config = _config(build_parser().parse_args(["serve", *flags]))
    openai, other = config.openai_realtime, config.realtime
    assert openai.partials is other.partials is not bool(flags)
    assert (openai.stable_prefix, openai.partial_beam_size) == (True, 5)
    assert (other.stable_prefix, other.partial_beam_size) == \
        (RealtimeConfig().stable_prefix, RealtimeConfig().partial_beam_size) == (False, 1)


def test_choices_come_from_the_tables() -> None:
    listen = build_parser()._subparsers._group_actions[0].choices["listen"]  # type: ignore[union-attr]
    assert list(_action(listen, "vad").choices or ()) == list(VAD_BACKENDS)
    assert tuple(_action(listen, "device").choices or ()) == DEVICES
    help_text = listen.format_help()
    assert f"(default {VadConfig().post_speech_silence_ms})" in " ".join(help_text.split())


SET = ["--model", "base", "--language", "zh", "--languages", "en,zh", "--numerals", "arabic",
       "--compute-type", "float32", "--beam-size", "2", "--engine", "scripted",
       "--vad", "energy", "--silence-ms", "700", "--turn", "smart"]


@pytest.mark.parametrize("command", [["serve"], ["phone", "--echo"]])
def test_every_model_and_vad_option_reaches_the_configs(command: list[str]) -> None:
    from harken.cli.options import engine_config, vad_config

    args = build_parser().parse_args(command + SET)
    engine, vad = engine_config(args), vad_config(args)
    assert (engine.model, engine.language, engine.languages, engine.numerals,
            engine.compute_type, engine.beam_size, engine.engine) == \
        ("base", "zh", ("en", "zh"), "arabic", "float32", 2, "scripted")
    assert (vad.backend, vad.post_speech_silence_ms, vad.turn_detection) == \
        ("energy", 700, "smart")


def test_serve_builds_its_server_config_from_the_shared_options() -> None:
    from harken.cli.serve import _config

    config = _config(build_parser().parse_args(["serve"] + SET))
    assert (config.engine.languages, config.engine.numerals, config.vad.turn_detection) == \
        (("en", "zh"), "arabic", "smart")
