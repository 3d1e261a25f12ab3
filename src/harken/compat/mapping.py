"""RealtimeSTT's terms <-> harken's (pure; no I/O).

In: :func:`to_settings` validates the arguments :data:`~.arguments.ARGUMENTS` marks as
mapped and returns the keyword settings for
:meth:`harken.config.RecorderConfig.with_settings` (refused arguments are checked first,
:func:`~.arguments.check_refused`; no-op arguments are not read); :func:`to_callbacks` and
:func:`partial_adapter` turn RealtimeSTT's callbacks into the Recorder's. Out:
:func:`format_text` and :func:`final_metadata` give a final as RealtimeSTT hands it out;
:func:`explain_start_failure` says what to do when RealtimeSTT's default model cannot load.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, HarkenError
from ..events import FinalTranscript
from ..units import s_to_ms
from .arguments import ARGUMENTS, check_refused, resolve_engine_name

__all__ = ["explain_start_failure", "final_metadata", "format_text", "partial_adapter",
           "to_callbacks", "to_settings", "wake_settings"]


def wake_settings(wake_words: str, backend: str, model_paths: str | None,
                  sensitivity: float, timeout: float, delay: float) -> dict[str, Any]:
    """Map RealtimeSTT's wake word arguments onto harken's ``wake_*`` settings.

    An empty ``wakeword_backend`` means Porcupine when every word is one of its built-in
    keywords and pvporcupine is installed (RealtimeSTT's usual setup), else the phrase
    backend, which takes any phrase. ``openwakeword_model_paths`` (comma-separated .tflite
    files) are the openWakeWord models.
    """
    from ..wake.names import PORCUPINE_KEYWORDS, normalize_backend, parse_wake_words

    key = (backend or "").strip().lower()
    if key in ("openwakewords", "oww", "openwakeword"):
        key = "openwakeword"
    if key == "openwakeword" and model_paths:
        words: str = model_paths
    elif not wake_words:
        return {}
    else:
        words = wake_words
    if not key or key == "none":
        builtin = all(w.lower() in PORCUPINE_KEYWORDS for w in parse_wake_words(words))
        key = ("porcupine" if builtin and importlib.util.find_spec("pvporcupine") is not None
               else "phrase")
    return {"wake_words": words, "wake_backend": normalize_backend(key),
            "wake_sensitivity": sensitivity, "wake_timeout_s": timeout,
            "wake_activation_delay_s": delay}


def _check_realtime(v: dict[str, Any], engine: str) -> None:
    """Live text runs on the main engine and model: refuse a different realtime one."""
    rt_engine = v["realtime_transcription_engine"]
    if rt_engine is not None and resolve_engine_name(
            rt_engine, "realtime_transcription_engine") != engine:
        raise ConfigError(f"realtime_transcription_engine={rt_engine!r}: harken's live text uses "
                          f"the main engine; set transcription_engine={rt_engine!r} instead")
    rt_options = v["realtime_transcription_engine_options"]
    if rt_options is not None and rt_options != v["transcription_engine_options"]:
        raise ConfigError("realtime_transcription_engine_options: harken's live text uses the "
                          "main engine's options; set transcription_engine_options instead")
    rt_model = v["realtime_model_type"]
    if (v["enable_realtime_transcription"] and not v["use_main_model_for_realtime"]
            and rt_model not in (ARGUMENTS["realtime_model_type"].default, v["model"])):
        raise ConfigError(f"realtime_model_type={rt_model!r}: harken's live text uses the main "
                          f"model; use model={rt_model!r} or use_main_model_for_realtime=True")


def to_settings(v: dict[str, Any]) -> dict[str, Any]:
    """Build harken Recorder settings from RealtimeSTT argument values.

    Args:
        v: every RealtimeSTT argument by name (the constructor's values).

    Raises:
        ConfigError: a refused argument has a non-default value, or a mapped one a value
            harken cannot use; the message names the argument and what to use instead.
    """
    check_refused(v)
    for name, value in v.items():
        if name.startswith("on_") and value is not None and not callable(value):
            raise ConfigError(f"{name} must be callable, got {value!r}")
    engine = resolve_engine_name(v["transcription_engine"], "transcription_engine")
    _check_realtime(v, engine)
    sens = v["silero_sensitivity"]
    if not 0.0 < sens < 1.0:
        raise ConfigError(f"silero_sensitivity must be between 0 and 1, got {sens!r}")
    prompt = v["initial_prompt"]
    if prompt is not None and not isinstance(prompt, str):
        raise ConfigError("initial_prompt: harken takes the prompt as text; pass a string "
                          "instead of token ids")
    options: dict[str, Any] = dict(v["transcription_engine_options"] or {})
    if v["suppress_tokens"] is not None:
        options["suppress_tokens"] = list(v["suppress_tokens"])
    device = v["device"]
    compute = v["compute_type"]
    return dict(
        engine=engine,
        model=v["model"],
        language=v["language"] or None,
        compute_type="int8" if compute in ("default", "auto") else compute,
        device="auto" if device == "cuda" else device,
        beam_size=v["beam_size"],
        initial_prompt=prompt,
        download_root=v["download_root"],
        options=options,
        silero_threshold=round(1.0 - sens, 4),
        webrtc_sensitivity=v["webrtc_sensitivity"],
        post_speech_silence_ms=s_to_ms(v["post_speech_silence_duration"]),
        min_utterance_ms=s_to_ms(v["min_length_of_recording"]),
        pre_roll_ms=s_to_ms(v["pre_recording_buffer_duration"]),
        partials=bool(v["enable_realtime_transcription"]),
        partial_interval_ms=s_to_ms(v["realtime_processing_pause"]),
        partial_min_ms=s_to_ms(v["init_realtime_after_seconds"]),
        partial_beam_size=v["beam_size_realtime"],
        early_final=bool(v["early_transcription_on_silence"]),
        pause_events=v["on_turn_detection_start"] is not None
        or v["on_turn_detection_stop"] is not None,
        **wake_settings(v["wake_words"], v["wakeword_backend"], v["openwakeword_model_paths"],
                        v["wake_words_sensitivity"], v["wake_word_timeout"],
                        v["wake_word_activation_delay"]),
    )


def partial_adapter(update: Callable[[str], Any] | None,
                    stabilized: Callable[[str], Any] | None) -> Callable[[str, str], None]:
    """Map harken's on_partial(stable, unstable) onto RealtimeSTT's two text callbacks.

    ``update`` gets the whole current text on every partial; ``stabilized`` gets it only
    when the stable part has grown.
    """
    last_stable = [""]

    def on_partial(stable: str, unstable: str) -> None:
        text = f"{stable} {unstable}".strip()
        if update is not None:
            update(text)
        if stabilized is not None and stable != last_stable[0]:
            last_stable[0] = stable
            stabilized(text)

    return on_partial


def to_callbacks(v: dict[str, Any]) -> dict[str, Any]:
    """The Recorder callbacks (keyword arguments) for RealtimeSTT's callback arguments.

    Args:
        v: every RealtimeSTT argument by name (the constructor's values). The callbacks
            the compat recorder calls itself (``on_transcription_start``,
            ``on_recorded_chunk``, ``on_vad_detect_*``) are not read.
    """
    callbacks: dict[str, Any] = {
        "on_speech_start": _all(v["on_recording_start"], v["on_vad_start"]),
        "on_speech_end": _all(v["on_recording_stop"], v["on_vad_stop"]),
        "on_wake_word_timeout": v["on_wakeword_timeout"],
        "on_wake_word_waiting": v["on_wakeword_detection_start"],
        "on_pause_start": v["on_turn_detection_start"],
        "on_pause_end": v["on_turn_detection_stop"],
    }
    heard = _all(v["on_wakeword_detected"], v["on_wakeword_detection_end"])
    if heard is not None:
        callbacks["on_wake_word"] = lambda word: heard()
    update = v["on_realtime_transcription_update"]
    stabilized = v["on_realtime_transcription_stabilized"]
    if update or stabilized:
        callbacks["on_partial"] = partial_adapter(update, stabilized)
    return callbacks


def _all(*cbs: Callable[[], Any] | None) -> Callable[[], None] | None:
    """One callback calling each given one in turn (None when none is given)."""
    given = [cb for cb in cbs if cb is not None]
    if not given:
        return None

    def call_all() -> None:
        for cb in given:
            cb()

    return call_all


def format_text(text: str, uppercase: bool, period: bool) -> str:
    """A final's text as RealtimeSTT returns it: stripped, with the first letter upper case
    (``ensure_sentence_starting_uppercase``) and a closing period after a final letter or
    digit (``ensure_sentence_ends_with_period``).
    """
    text = text.strip()
    if not text:
        return text
    if uppercase:
        text = text[0].upper() + text[1:]
    if period and text[-1].isalnum():
        text += "."
    return text


def final_metadata(final: FinalTranscript, words: bool) -> dict[str, Any]:
    """RealtimeSTT's ``last_transcription_metadata`` of ``final``: ``language``,
    ``language_probability``, ``compute_seconds`` (s) and, with ``words``, ``words`` (dicts
    with ``word``, ``start``, ``end`` in s from the start of the stream, ``probability``).
    """
    meta: dict[str, Any] = {"language": final.language,
                            "language_probability": final.language_probability,
                            "compute_seconds": final.compute_seconds}
    if words:
        meta["words"] = [{"word": w.text, "start": w.start, "end": w.end,
                          "probability": w.probability} for w in final.words]
    return meta


def explain_start_failure(model: str, exc: HarkenError) -> HarkenError:
    """The error to raise when the recorder with ``model`` failed to start with ``exc``:
    for RealtimeSTT's multilingual model names, one that says how to run offline.
    """
    if model in ("tiny", "base", "small", "medium") or model.startswith("large"):
        return ConfigError(
            f"model={model!r} could not be loaded ({exc}). RealtimeSTT's default 'tiny' and "
            "the other names without '.en' are multilingual models that faster-whisper "
            "downloads; harken embeds only the English 'tiny.en' for offline use. Pass "
            "model='tiny.en' for English (or set HARKEN_COMPAT_MODEL=tiny.en to keep the "
            "program unchanged), or the path of a multilingual faster-whisper model "
            "directory.")
    return exc
