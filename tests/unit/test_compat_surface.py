"""harken.compat against RealtimeSTT 1.1.2's own source (read with ast: importing it pulls
torch): every argument, default and method is there, and every refused value says why and
what to use instead."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import logging
import platform
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harken.compat import AudioToTextRecorder
from harken.compat.arguments import ARGUMENTS, markdown_table
from harken.errors import ConfigError

_SPEC = importlib.util.find_spec("RealtimeSTT")
pytestmark = pytest.mark.skipif(_SPEC is None, reason="RealtimeSTT (--no-deps) not installed")


def _package() -> Path:
    assert _SPEC is not None and _SPEC.origin is not None
    return Path(_SPEC.origin).parent


def _constants(tree: ast.Module) -> dict[str, Any]:
    """Module-level NAME = literal assignments."""
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _rtstt_class() -> tuple[ast.ClassDef, dict[str, Any]]:
    tree = ast.parse((_package() / "audio_recorder.py").read_text())
    names = _constants(tree)
    names.update(_constants(ast.parse((_package() / "core" / "tail_transcription.py")
                                      .read_text())))
    names["INIT_HANDLE_BUFFER_OVERFLOW"] = platform.system() != "Darwin"  # its if-statement
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef)
               and n.name == "AudioToTextRecorder")
    return cls, names


def _value(node: ast.expr, names: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.Attribute) and ast.unparse(node) == "logging.WARNING":
        return logging.WARNING
    return ast.literal_eval(node)


def _signature(fn: ast.FunctionDef, names: dict[str, Any]) -> dict[str, Any]:
    args = fn.args.args[1:]
    defaults = [inspect.Parameter.empty] * (len(args) - len(fn.args.defaults)) + [
        _value(d, names) for d in fn.args.defaults]
    return {a.arg: d for a, d in zip(args, defaults, strict=True)}


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)
            and (not n.name.startswith("_") or n.name in ("__enter__", "__exit__"))}


def test_every_constructor_argument_and_default_matches_realtimestt() -> None:
    cls, names = _rtstt_class()
    theirs = _signature(_methods(cls)["__init__"] if "__init__" in _methods(cls) else next(
        n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), names)
    ours = {n: p.default for n, p in
            inspect.signature(AudioToTextRecorder.__init__).parameters.items() if n != "self"}
    assert len(theirs) == 101
    assert list(ours) == list(theirs)  # same names, same order (positional calls work)
    for name, default in theirs.items():
        assert ours[name] == default, name
        assert ARGUMENTS[name].default == default, name
    assert list(ARGUMENTS) == list(theirs)


def test_every_public_method_matches_realtimestt() -> None:
    cls, names = _rtstt_class()
    for name, fn in _methods(cls).items():
        if name == "__init__":
            continue
        ours = getattr(AudioToTextRecorder, name, None)
        assert ours is not None, f"missing method {name}"
        params = {n: p.default for n, p in inspect.signature(ours).parameters.items()
                  if n != "self" and p.kind is not inspect.Parameter.KEYWORD_ONLY}
        assert params == _signature(fn, names), name


def test_every_callback_is_accepted_and_checked() -> None:
    callbacks = [n for n in ARGUMENTS if n.startswith("on_")]
    assert len(callbacks) == 21
    for name in callbacks:
        if ARGUMENTS[name].kind == "refused":
            continue
        with pytest.raises(ConfigError, match=name):
            AudioToTextRecorder(use_microphone=False, **{name: "not callable"})
        AudioToTextRecorder(use_microphone=False, **{name: lambda *a: None})


_NON_DEFAULT = {bool: True, int: 7, float: 2.5, str: "x"}


@pytest.mark.parametrize("name", [n for n, a in ARGUMENTS.items() if a.kind == "refused"])
def test_refused_values_name_the_argument_and_the_alternative(name: str) -> None:
    arg = ARGUMENTS[name]
    if name.startswith("on_") or name.endswith("executor"):
        value: Any = lambda *a: None  # noqa: E731
    elif arg.default is None:
        value = "something"
    else:
        value = _NON_DEFAULT[type(arg.default)]
        if value == arg.default:
            value = not value if isinstance(value, bool) else value + value
    with pytest.raises(ConfigError) as err:
        AudioToTextRecorder(use_microphone=False, **{name: value})
    assert f"{name}=" in str(err.value) and arg.instead in str(err.value)


def test_defaults_construct_and_start_nothing() -> None:
    rec = AudioToTextRecorder()
    assert rec._config.engine.model == "tiny"  # RealtimeSTT's multilingual default, kept
    assert rec._config.engine.engine == "faster-whisper"
    assert rec._config.engine.device == "auto"  # its "cuda", falling back to the CPU
    assert rec._recorder is None and rec.state == "inactive"
    rec.shutdown()


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"transcription_engine": "parakeet"}, "'faster_whisper'"),
    ({"realtime_transcription_engine": "scripted"}, "transcription_engine='scripted'"),
    ({"realtime_model_type": "base", "enable_realtime_transcription": True,
      "model": "tiny.en"}, "use_main_model_for_realtime=True"),
    ({"initial_prompt": [1, 2, 3]}, "pass a string"),
    ({"silero_sensitivity": 1.5}, "between 0 and 1"),
])
def test_mapped_arguments_refuse_what_harken_cannot_do(kwargs: dict[str, Any],
                                                       needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        AudioToTextRecorder(use_microphone=False, **kwargs)
    assert next(iter(kwargs)) in str(err.value) and needle in str(err.value)


def test_engine_names_resolve_the_realtimestt_way() -> None:
    for name in ("faster_whisper", "faster-whisper", "whisper"):
        assert AudioToTextRecorder(transcription_engine=name)._config.engine.engine == \
            "faster-whisper"
    rec = AudioToTextRecorder(transcription_engine="scripted", suppress_tokens=None,
                              realtime_transcription_engine="scripted",
                              enable_realtime_transcription=True, realtime_model_type="tiny")
    assert rec._config.engine.engine == "scripted" and rec._config.realtime.partials


def test_readme_table_lists_every_argument() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert markdown_table() in readme
    for name in ARGUMENTS:
        assert f"`{name}`" in readme


def test_format_number_and_audio_coercion() -> None:
    assert AudioToTextRecorder.format_number(123.4567) == "23.45"
    from harken.compat.recorder import _as_float
    pcm = np.array([0, 16384, -32768], np.int16)
    assert np.allclose(_as_float(pcm.tobytes()), [0, 0.5, -1.0])
    assert np.allclose(_as_float(pcm), [0, 0.5, -1.0])
