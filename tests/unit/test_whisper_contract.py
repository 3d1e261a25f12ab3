"""Contracts pinned against the installed packages: no model is loaded here.

1. The faster-whisper internals that ``harken/engine/whisper/fast_pass.py`` calls exist with
   the parameters it passes (faster-whisper's own ``test_transcribe_signature`` idea), so an
   upgrade that renames or drops one fails here, in one clear place, rather than as odd text
   in a model test. The CTranslate2 methods are pybind11 functions without an
   ``inspect.signature``; their signature line in ``__doc__`` is checked instead.
2. ScriptedEngine, the test stand-in, has FasterWhisperEngine's public methods with the same
   parameters, and both match the TranscriptionEngine protocol.
"""

from __future__ import annotations

import functools
import inspect
import re

import pytest

from harken.engine.base import TranscriptionEngine
from harken.engine.faster_whisper import FasterWhisperEngine
from harken.engine.scripted import ScriptedEngine
from harken.engine.whisper.options import TRANSCRIBE_KEYS


def _params(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def _doc_signature(function: object) -> str:
    """The first line of a pybind11 docstring: ``name(self: ..., arg: type = default, ...)``."""
    return (getattr(function, "__doc__", None) or "").strip().splitlines()[0]


@pytest.fixture(scope="module")
def fw() -> object:
    return pytest.importorskip("faster_whisper")


def test_whisper_model_methods_the_fast_pass_calls(fw: object) -> None:
    from faster_whisper import WhisperModel
    from faster_whisper.feature_extractor import FeatureExtractor

    assert _params(WhisperModel.encode)[:2] == ["self", "features"]
    prompt = _params(WhisperModel.get_prompt)
    assert prompt[:3] == ["self", "tokenizer", "previous_tokens"]
    assert {"without_timestamps", "prefix", "hotwords"} <= set(prompt)
    assert _params(WhisperModel.find_alignment)[:5] == [
        "self", "tokenizer", "text_tokens", "encoder_output", "num_frames"]
    assert _params(FeatureExtractor.__call__)[:2] == ["self", "waveform"]
    assert "padding" in _params(FeatureExtractor.__call__)
    # Attributes set on every loaded model, read by the fast pass.
    init = inspect.getsource(WhisperModel.__init__)
    for attribute in ("feature_extractor", "hf_tokenizer", "model"):
        assert re.search(rf"self\.{attribute}\s*=", init), attribute


def test_tokenizer_and_punctuation_helpers(fw: object) -> None:
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import merge_punctuations

    assert _params(Tokenizer.__init__) == ["self", "tokenizer", "multilingual", "task",
                                           "language"]
    assert _params(Tokenizer.encode)[:2] == ["self", "text"]
    assert _params(Tokenizer.decode)[:2] == ["self", "tokens"]
    assert isinstance(inspect.getattr_static(Tokenizer, "eot"),
                      (property, functools.cached_property))
    assert _params(merge_punctuations) == ["alignment", "prepended", "appended"]


def test_ctranslate2_whisper_methods(fw: object) -> None:
    import ctranslate2

    whisper = ctranslate2.models.Whisper
    generate = _doc_signature(whisper.generate)
    assert generate.startswith("generate(self"), generate
    for keyword in ("features", "prompts", "beam_size", "max_length", "return_scores",
                    "return_no_speech_prob"):
        assert re.search(rf"\b{keyword}\b", generate), keyword
    assert _doc_signature(whisper.detect_language).startswith("detect_language(self"), \
        _doc_signature(whisper.detect_language)
    assert isinstance(inspect.getattr_static(whisper, "is_multilingual"), property)
    result = ctranslate2.models.WhisperGenerationResult
    for attribute in ("sequences_ids", "scores", "no_speech_prob"):
        assert hasattr(result, attribute), attribute


def test_options_name_only_real_transcribe_keywords(fw: object) -> None:
    from faster_whisper import WhisperModel

    accepted = set(_params(WhisperModel.transcribe)) - {"self", "audio"}
    assert TRANSCRIBE_KEYS <= accepted, sorted(TRANSCRIBE_KEYS - accepted)


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(getattr(cls, name)) for name in dir(cls)
            if not name.startswith("_") and callable(getattr(cls, name))}


def test_scripted_engine_has_the_faster_whisper_engine_signature() -> None:
    scripted, real = _public(ScriptedEngine), _public(FasterWhisperEngine)
    # set_stop_check: the optional hook the engine child gives a check to, asked after the
    # encoder (a partial while a final waits, a cancelled request; see harken.worker.child).
    assert set(scripted) == {"load", "info", "transcribe", "close", "set_stop_check"}
    # The real engine's one extra: the optional batch API the engine child uses where an
    # engine has it (cheap finals that wait together; see harken.worker.child).
    assert set(real) == set(scripted) | {"transcribe_batch"}
    for name in scripted:
        assert scripted[name] == real[name], name
    protocol = inspect.signature(TranscriptionEngine.transcribe)
    assert real["transcribe"] == protocol
    # Both take the config first; the real engine also accepts an injected model.
    assert _params(ScriptedEngine.__init__)[:2] == _params(FasterWhisperEngine.__init__)[:2]


class _Languages:
    """A loaded model as far as ``info()`` looks: ``WhisperModel.supported_languages``."""

    supported_languages = ["en", "zh", "de"]


@pytest.mark.parametrize(("settings", "listed"), [
    ({}, ["en", "zh", "de"]),
    ({"languages": ("zh", "en")}, ["en", "zh"]),
    ({"language": "de"}, ["de"]),
])
def test_info_lists_the_languages_the_settings_allow(settings, listed) -> None:
    """The browser page's language picker shows these (from the engine's ready message)."""
    from harken.config import EngineConfig

    info = FasterWhisperEngine(EngineConfig(**settings), model=_Languages()).info()
    assert info["languages"] == listed
    assert info["model_languages"] == ["en", "zh", "de"]  # what a session may ask for
