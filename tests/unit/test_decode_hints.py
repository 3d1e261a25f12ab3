"""Typed decode hints and the faster-whisper engine's typed options (pure, no model).

Covers DecodeHints (validation, merging, the wire form), WhisperOptions (the user's dict
form, the keys it refuses and why, the pass each quality takes) and where the pure core
and the server session put hints on requests.
"""

from __future__ import annotations

import numpy as np
import pytest

from harken.config import RealtimeConfig, VadConfig
from harken.core import SpeechPipeline
from harken.engine.base import DecodeHints, TranscribeRequest
from harken.engine.whisper.options import WhisperOptions
from harken.errors import ConfigError
from harken.testing import ScriptedVad, silence, tone

# ---------------------------------------------------------------- DecodeHints


@pytest.mark.parametrize("kwargs, match", [
    ({"quality": "best"}, "quality must be None or one of standard, fast, cheap"),
    ({"beam_size": 0}, "beam_size must be None or an int from 1 to 20"),
    ({"beam_size": True}, "beam_size"),
    ({"word_timestamps": 1}, "word_timestamps must be None, True or False"),
    ({"prefix": 3}, "prefix must be None or a string"),
    ({"extra": {1: "x"}}, "extra must be a dict with string keys"),
])
def test_bad_hints_are_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DecodeHints(**kwargs)  # type: ignore[arg-type]


def test_merged_takes_every_hint_the_other_sets() -> None:
    base = DecodeHints(beam_size=1, word_timestamps=False, extra={"a": 1, "b": 2})
    merged = base.merged(DecodeHints(language="de", beam_size=3, extra={"b": 5}))
    assert merged == DecodeHints(beam_size=3, word_timestamps=False, language="de",
                                 extra={"a": 1, "b": 5})
    assert base.merged(DecodeHints()) is base


def test_wire_form_holds_only_the_hints_set_and_refuses_unknown_keys() -> None:
    hints = DecodeHints(quality="standard", prefix="Hello", extra={"text": "x"})
    assert hints.to_dict() == {"quality": "standard", "prefix": "Hello",
                               "extra": {"text": "x"}}
    assert DecodeHints().to_dict() == {}
    assert DecodeHints.from_dict(hints.to_dict()) == hints
    with pytest.raises(ConfigError, match="unknown decode hint.*beam; known: beam_size"):
        DecodeHints.from_dict({"beam": 2})
    with pytest.raises(ConfigError, match="must be a dict, got list"):
        DecodeHints.from_dict([])  # type: ignore[arg-type]


def test_extra_is_copied_so_the_callers_dict_cannot_change_a_request() -> None:
    extra = {"text": "hi"}
    hints = DecodeHints(extra=extra)
    extra["text"] = "changed"
    assert hints.extra == {"text": "hi"}


# ---------------------------------------------------------------- WhisperOptions


def test_the_dict_form_becomes_typed_options() -> None:
    options = WhisperOptions.from_dict({"fast_finals": False, "max_repeats": None,
                                        "temperature": 0.0, "suppress_tokens": [-1]})
    assert options.fast_finals is False and options.max_repeats is None
    assert options.transcribe == {"temperature": 0.0, "suppress_tokens": [-1]}
    kwargs = options.transcribe_kwargs()
    assert kwargs["temperature"] == 0.0 and kwargs["no_speech_threshold"] == 0.6
    assert WhisperOptions.from_dict({}) == WhisperOptions()


def test_unknown_keys_are_named_in_one_error() -> None:
    with pytest.raises(ConfigError) as info:
        WhisperOptions.from_dict({"fast_final": True, "beam": 2, "beam_size": 2})
    message = str(info.value)
    assert message.startswith("EngineConfig.options: unknown faster-whisper option(s) "
                              "'beam', 'fast_final'"), message
    assert "fast_finals" in message and "WhisperModel.transcribe" in message


@pytest.mark.parametrize("options, match", [
    ({"fast_finals": 1}, "'fast_finals' must be True or False"),
    ({"fast_min_window_s": 0}, "'fast_min_window_s' must be a number > 0"),
    ({"fast_cheap_min_window_s": -1}, "'fast_cheap_min_window_s' must be a number > 0"),
    ({"batch_cheap_finals": 0}, "'batch_cheap_finals' must be an int from 1 to 64"),
    ({"batch_cheap_finals": True}, "'batch_cheap_finals' must be an int from 1 to 64"),
    ({"no_speech_threshold": "high"}, "'no_speech_threshold' must be a number or None"),
    ({"compression_ratio_threshold": float("nan")}, "compression_ratio_threshold"),
    ({"max_repeats": 0}, "'max_repeats' must be an int >= 1 or None"),
])
def test_bad_values_name_the_key_and_where_it_came_from(options: dict[str, object],
                                                        match: str) -> None:
    with pytest.raises(ConfigError, match=f"^request: .*{match}"):
        WhisperOptions().updated(options, where="request")


def test_transcribe_holds_only_real_transcribe_keywords() -> None:
    with pytest.raises(ConfigError, match="unknown faster-whisper option.*'nope'"):
        WhisperOptions(transcribe={"nope": 1})
    with pytest.raises(ConfigError, match="set max_repeats as WhisperOptions field"):
        WhisperOptions(transcribe={"max_repeats": 1})


def test_updated_overrides_without_changing_the_original() -> None:
    base = WhisperOptions.from_dict({"temperature": 0.0})
    request = base.updated({"log_prob_threshold": None, "best_of": 2})
    assert request.log_prob_threshold is None and base.log_prob_threshold == -1.0
    assert request.transcribe == {"temperature": 0.0, "best_of": 2}
    assert base.updated({}) is base


@pytest.mark.parametrize("quality, kind, config, window", [
    (None, "partial", {}, 10.0),
    (None, "final", {}, 12.0),
    (None, "final", {"fast_finals": False}, None),
    (None, "partial", {"fast_partials": False}, None),
    ("fast", "final", {"fast_finals": False}, 12.0),  # the request's hint wins
    ("fast", "partial", {"fast_partials": False}, 10.0),
    ("standard", "final", {}, None),
    ("standard", "partial", {}, None),
    ("cheap", "final", {}, 10.0),  # its own window option
    ("cheap", "final", {"fast_cheap_min_window_s": 3.0}, 3.0),
    ("cheap", "final", {"fast_min_window_s": 8.0}, 10.0),  # not the partials'
    ("cheap", "partial", {}, 10.0),  # a partial keeps the partials' window
    ("cheap", "partial", {"fast_partials": False}, 10.0),
])
def test_each_quality_takes_its_pass(quality: str | None, kind: str,
                                     config: dict[str, object],
                                     window: float | None) -> None:
    options = WhisperOptions.from_dict(config)
    assert options.fast_window_s(quality, kind) == window  # type: ignore[arg-type]


# ---------------------------------------------------------------- who emits hints


def _finals(realtime: RealtimeConfig) -> list[TranscribeRequest]:
    pipe = SpeechPipeline(ScriptedVad([(0.5, 2.0)]), VadConfig(backend="energy"), realtime)
    audio = np.concatenate([silence(0.5), tone(1.5), silence(1.5)])
    out = [x for i in range(0, len(audio), 320) for x in pipe.feed(audio[i:i + 320])]
    return [r for r in out if isinstance(r, TranscribeRequest) and r.kind == "final"]


def test_finals_carry_the_configured_quality() -> None:
    assert [f.hints for f in _finals(RealtimeConfig(partials=False))] == [DecodeHints()]
    standard = _finals(RealtimeConfig(partials=False, final_quality="standard"))
    assert [f.hints.quality for f in standard] == ["standard"]
    with pytest.raises(ConfigError, match="final_quality must be None or one of"):
        RealtimeConfig(final_quality="best")  # type: ignore[arg-type]


def test_a_session_adds_its_hints_to_every_request() -> None:
    from harken.server.session import StreamSession

    submitted: list[TranscribeRequest] = []

    class Host:
        def open_session(self, *args: object) -> object:
            return object()

        def submit(self, slot: object, request: TranscribeRequest, *,
                   early: bool = False) -> None:
            submitted.append(request)
            early_ids.extend([request.request_id] if early else [])

        def confirm(self, slot: object, request_id: int) -> None:
            confirmed.append(request_id)

    early_ids: list[int] = []
    confirmed: list[int] = []
    session = StreamSession(Host(), "s", lambda event: None,  # type: ignore[arg-type]
                            vad_config=VadConfig(backend="energy"))
    session.open()
    session.begin(ScriptedVad([(0.5, 2.0)]), RealtimeConfig(partials=False, stable_prefix=False),
                  language="de", hints=DecodeHints(initial_prompt="Guten Tag.", beam_size=2))
    audio = np.concatenate([silence(0.5), tone(1.5), silence(1.5)])
    for i in range(0, len(audio), 320):  # 20 ms messages
        session.feed(audio[i:i + 320])
    assert submitted, "no request reached the host"
    # The final went out early (at the first silence) and was confirmed once it stood.
    assert early_ids == confirmed == [submitted[-1].request_id]
    assert all(r.hints == DecodeHints(language="de", initial_prompt="Guten Tag.", beam_size=2)
               for r in submitted)
