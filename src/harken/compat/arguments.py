"""RealtimeSTT 1.1.2's ``AudioToTextRecorder`` arguments and what harken does with each (pure).

:data:`ARGUMENTS` is the one table: every argument with RealtimeSTT's default and how harken
treats it: ``"mapped"`` (honoured, through the harken setting named in ``note``),
``"no-op"`` (a knob of RealtimeSTT's own internals that harken does not have; any value is
accepted and changes nothing) or ``"refused"`` (RealtimeSTT's default is accepted; any other
value raises :class:`~harken.errors.ConfigError` saying why and what to use instead).
:func:`check_refused` applies it; :func:`markdown_table` writes it out for the README.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["ARGUMENTS", "Argument", "check_refused", "markdown_table", "resolve_engine_name"]

_WHISPER_ENGINES = ("faster_whisper", "faster-whisper", "fasterwhisper", "whisper")
"""RealtimeSTT's names for the faster-whisper backend (harken's "faster-whisper")."""


@dataclass(frozen=True)
class Argument:
    """One RealtimeSTT argument: its default, harken's treatment and the explanation."""

    default: Any
    kind: str
    """"mapped", "no-op" or "refused" (see the module docstring)."""
    note: str
    """mapped: what it becomes in harken; no-op: why nothing is needed; refused: why."""
    instead: str = ""
    """refused: what to use instead (named in the ConfigError)."""


def _m(default: Any, note: str) -> Argument:
    return Argument(default, "mapped", note)


def _n(default: Any, note: str) -> Argument:
    return Argument(default, "no-op", note)


def _r(default: Any, why: str, instead: str) -> Argument:
    return Argument(default, "refused", why, instead)


_NO_SYLLABLES = "harken schedules live text on a fixed interval, not on syllable boundaries"
_NO_PREVIEW = "harken has no separate Preview transcription"
_PREVIEW_INSTEAD = ("early_transcription_on_silence (harken's early final) or "
                    "harken.Recorder(on_partial=...)")
_NO_ULTRAFAST = "harken computes live text with one model, not a second ultrafast lane"
_NO_EXECUTOR = "harken runs transcription in its own engine program, not in a callable"
_EXECUTOR_INSTEAD = "transcription_engine='package.module:MyEngine' (a harken engine class)"

ARGUMENTS: dict[str, Argument] = {
    "model": _m("tiny", "engine model (faster-whisper name or directory); 'tiny.en' is embedded "
                "offline, other names need the model in the local cache or a path"),
    "transcription_engine": _m("faster_whisper", "engine: 'faster_whisper' is harken's "
                               "'faster-whisper'; harken engine names and class paths work too"),
    "transcription_engine_options": _m(None, "engine options (faster-whisper transcribe "
                                       "keywords)"),
    "download_root": _m(None, "download_root"),
    "language": _m("", "language ('' detects)"),
    "compute_type": _m("default", "compute_type ('default' is int8)"),
    "input_device_index": _m(None, "the microphone's device index"),
    "gpu_device_index": _r(0, "harken's engine uses one GPU, the first it sees",
                           "CUDA_VISIBLE_DEVICES=<index> to choose the GPU"),
    "device": _m("cuda", "device: 'cuda' is harken's 'auto' (the GPU when CUDA works, else "
                 "the CPU)"),
    "on_recording_start": _m(None, "speech started (after the pre-roll)"),
    "on_recording_stop": _m(None, "speech ended"),
    "on_transcription_start": _m(None, "called with the recording's float32 audio before "
                                 "its final; a true return skips the final"),
    "ensure_sentence_starting_uppercase": _m(True, "applied to every final"),
    "ensure_sentence_ends_with_period": _m(True, "applied to every final"),
    "use_microphone": _m(True, "microphone source (False: feed_audio)"),
    "spinner": _n(True, "harken prints nothing (no console spinner)"),
    "level": _m(logging.WARNING, "level of the 'harken' logger"),
    "batch_size": _n(16, "harken's engine batches requests itself"),
    "enable_realtime_transcription": _m(False, "partials (live text)"),
    "use_main_model_for_realtime": _m(False, "live text always uses the main model"),
    "realtime_transcription_engine": _m(None, "must be None or the main engine (live text uses "
                                        "the main engine)"),
    "realtime_transcription_engine_options": _m(None, "must be None or the main engine's "
                                                "options"),
    "realtime_model_type": _m("tiny", "live text uses the main model; another model than the "
                              "default or the main one is refused while live text is on"),
    "realtime_processing_pause": _m(0.2, "partial_interval_ms"),
    "init_realtime_after_seconds": _m(0.2, "partial_min_ms"),
    "on_realtime_transcription_update": _m(None, "text of every partial"),
    "on_realtime_transcription_stabilized": _m(None, "text of each partial whose stable part "
                                               "grew"),
    "realtime_batch_size": _n(16, "harken's engine batches requests itself"),
    "silero_sensitivity": _m(0.4, "silero_threshold = 1 - sensitivity"),
    "silero_use_onnx": _n(None, "harken always runs Silero in ONNX Runtime"),
    "silero_deactivity_detection": _n(False, "harken's end of speech is always confirmed by "
                                      "Silero"),
    "webrtc_sensitivity": _m(3, "webrtc_sensitivity"),
    "warmup_vad": _n(True, "harken loads and runs the VAD in start()"),
    "post_speech_silence_duration": _m(0.6, "post_speech_silence_ms"),
    "min_length_of_recording": _m(0.5, "min_utterance_ms"),
    "min_gap_between_recordings": _r(0, "harken starts a new recording as soon as speech "
                                     "resumes", "post_speech_silence_duration to keep pauses "
                                     "inside one recording"),
    "pre_recording_buffer_duration": _m(1.0, "pre_roll_ms"),
    "pre_recording_buffer_trim_config": _r(None, "harken keeps the whole pre-roll",
                                           "a shorter pre_recording_buffer_duration"),
    "on_vad_start": _m(None, "speech started"),
    "on_vad_stop": _m(None, "speech ended"),
    "on_vad_detect_start": _m(None, "called when the recorder starts listening for speech "
                              "(at start and after each recording)"),
    "on_vad_detect_stop": _m(None, "called when speech starts a recording"),
    "on_turn_detection_start": _m(None, "pause started: silence began inside a recording "
                                  "(pause_events)"),
    "on_turn_detection_stop": _m(None, "pause ended: speech resumed, or the recording "
                                 "stopped (after on_recording_stop)"),
    "wakeword_backend": _m("", "wake_backend ('pvporcupine', 'oww'/'openwakeword', 'phrase'; "
                           "empty: Porcupine for its keywords when installed, else phrase)"),
    "openwakeword_model_paths": _m(None, "openWakeWord models (wake_words)"),
    "openwakeword_inference_framework": _n("onnx", "harken's openWakeWord runtime picks its "
                                           "own framework"),
    "wake_words": _m("", "wake_words"),
    "wake_words_sensitivity": _m(0.6, "wake_sensitivity"),
    "wake_word_activation_delay": _m(0.0, "wake_activation_delay_s"),
    "wake_word_timeout": _m(5.0, "wake_timeout_s"),
    "wake_word_buffer_duration": _n(0.1, "harken's recording starts after the wake word "
                                    "already"),
    "on_wakeword_detected": _m(None, "wake word heard"),
    "on_wakeword_timeout": _m(None, "no speech followed the wake word in time"),
    "on_wakeword_detection_start": _m(None, "waiting for a wake word begins"),
    "on_wakeword_detection_end": _m(None, "a wake word was heard"),
    "on_recorded_chunk": _m(None, "called with each chunk of audio as 16 kHz int16 bytes"),
    "debug_mode": _n(False, "harken prints nothing; use level=logging.DEBUG"),
    "handle_buffer_overflow": _n(platform.system() != "Darwin", "harken's microphone never "
                                 "blocks; dropped blocks are counted and logged"),
    "beam_size": _m(5, "beam_size"),
    "beam_size_realtime": _m(3, "partial_beam_size"),
    "buffer_size": _r(512, "harken's VAD frame is fixed at 512 samples",
                      "leave buffer_size at 512; feed_audio takes chunks of any size"),
    "sample_rate": _r(16000, "harken opens the microphone at its own rate and resamples to "
                      "16 kHz itself", "feed_audio(chunk, original_sample_rate) for pushed "
                      "audio at another rate"),
    "initial_prompt": _m(None, "initial_prompt (a string; token lists are refused)"),
    "initial_prompt_realtime": _r(None, "harken's live text uses the main model's prompt",
                                  "initial_prompt"),
    "suppress_tokens": _m([-1], "the engine's suppress_tokens option"),
    "print_transcription_time": _m(False, "logs each final's compute time at INFO on "
                                   "'harken.compat'"),
    "early_transcription_on_silence": _m(0, "early_final (any value > 0)"),
    "allowed_latency_limit": _n(100, "harken never drops queued audio; the backlog is "
                                "bounded by max_backlog_s"),
    "no_log_file": _n(False, "harken writes no log file"),
    "use_extended_logging": _n(False, "use level=logging.DEBUG"),
    "faster_whisper_vad_filter": _n(True, "harken sends the engine VAD-cut recordings only"),
    "normalize_audio": _r(False, "harken transcribes recordings as they were heard",
                          "normalise the audio before feed_audio, or "
                          "feed_audio_file(..., normalize=True)"),
    "final_transcription_word_timestamps": _m(False, "word timings in "
                                              "last_transcription_metadata['words']"),
    "start_callback_in_new_thread": _n(False, "callbacks already run off the audio thread, on "
                                       "harken's dispatch thread"),
    "realtime_transcription_use_syllable_boundaries": _r(False, _NO_SYLLABLES,
                                                         "realtime_processing_pause"),
    "realtime_boundary_detector_sensitivity": _n(0.6, "tunes syllable boundaries (refused)"),
    "realtime_boundary_followup_delays": _n((0.05, 0.2), "tunes syllable boundaries (refused)"),
    "transcription_executor": _r(None, _NO_EXECUTOR, _EXECUTOR_INSTEAD),
    "realtime_transcription_executor": _r(None, _NO_EXECUTOR, _EXECUTOR_INSTEAD),
    "on_realtime_text_stabilization_update": _r(
        None, "harken has no structured stabilization event",
        "on_realtime_transcription_stabilized, or harken.Recorder(on_partial=(stable, "
        "unstable))"),
    "realtime_punctuation_split_marks": _r("off", "harken splits recordings only at "
                                           "max_utterance_s", "leave it 'off'"),
    "silero_backend": _n("auto", "harken always runs Silero in ONNX Runtime on the CPU"),
    "silero_onnx_model_path": _r(None, "harken loads the Silero model that faster-whisper "
                                 "ships", "leave silero_onnx_model_path unset"),
    "silero_onnx_threads": _n(2, "harken's Silero runs on one thread (~0.12 ms a frame)"),
    "deactivity_silence_confirmation_duration": _n(
        0.16, "harken confirms silence inside post_speech_silence_duration"),
    "enable_preview_transcription": _r(False, _NO_PREVIEW, _PREVIEW_INSTEAD),
    "preview_model_type": _r(None, _NO_PREVIEW, _PREVIEW_INSTEAD),
    "preview_transcription_engine": _r(None, _NO_PREVIEW, _PREVIEW_INSTEAD),
    "preview_transcription_engine_options": _r(None, _NO_PREVIEW, _PREVIEW_INSTEAD),
    "preview_transcription_tail_seconds": _n(3.0, "tunes Preview (refused)"),
    "on_preview_transcription_finished": _r(None, _NO_PREVIEW, _PREVIEW_INSTEAD),
    "preview_transcription_executor": _r(None, _NO_PREVIEW, _PREVIEW_INSTEAD),
    "preview_transcription_min_live_words_for_fuzzy_repair": _n(3, "tunes Preview (refused)"),
    "ultrafast_realtime_model_type": _r(None, _NO_ULTRAFAST, "on_realtime_transcription_update"),
    "ultrafast_realtime_transcription_engine": _r(None, _NO_ULTRAFAST,
                                                  "on_realtime_transcription_update"),
    "ultrafast_realtime_transcription_engine_options": _r(
        None, _NO_ULTRAFAST, "on_realtime_transcription_update"),
    "on_ultrafast_transcription_update": _r(None, _NO_ULTRAFAST,
                                            "on_realtime_transcription_update"),
    "on_merged_realtime_transcription_update": _r(None, _NO_ULTRAFAST,
                                                  "on_realtime_transcription_update"),
    "on_realtime_transcription_merge_update": _r(None, _NO_ULTRAFAST,
                                                 "on_realtime_transcription_update"),
    "ultrafast_realtime_max_tail_words": _n(5, "tunes the ultrafast lane (refused)"),
}
"""Every RealtimeSTT 1.1.2 ``AudioToTextRecorder`` argument, in its order."""


def check_refused(values: dict[str, Any]) -> None:
    """Raise ConfigError for every refused argument given a value other than its default.

    Raises:
        ConfigError: names each such argument, why harken cannot honour it and what to use.
    """
    problems = []
    for name, arg in ARGUMENTS.items():
        if arg.kind == "refused" and name in values and values[name] != arg.default:
            problems.append(f"{name}={values[name]!r}: {arg.note}; use {arg.instead} instead")
    if problems:
        raise ConfigError("harken.compat.AudioToTextRecorder cannot honour "
                          + "; ".join(problems))


def resolve_engine_name(name: str | None, argument: str) -> str:
    """Turn a RealtimeSTT engine name into harken's registry name.

    Raises:
        ConfigError: ``name`` is neither a faster-whisper alias, a harken engine name nor a
            "package.module:Class" path; the message lists harken's engines.
    """
    from ..engine.registry import ENGINES, resolve_engine

    key = (name or "faster_whisper").strip()
    if key.lower() in _WHISPER_ENGINES:
        return "faster-whisper"
    try:
        resolve_engine(key)
    except ConfigError:
        raise ConfigError(f"{argument}={name!r}: harken has no such engine; use one of "
                          f"'faster_whisper', {', '.join(repr(e) for e in sorted(ENGINES))} or a "
                          "class path such as 'mypackage.engines:MyEngine'") from None
    return key


def markdown_table() -> str:
    """The README's compatibility table of arguments (one row per argument)."""
    rows = ["| RealtimeSTT argument (default) | harken | how |", "|---|---|---|"]
    for name, arg in ARGUMENTS.items():
        how = arg.note + (f"; instead: {arg.instead}" if arg.instead else "")
        kind = {"mapped": "honoured", "no-op": "no-op", "refused": "refused unless default"}
        rows.append(f"| `{name}` (`{arg.default!r}`) | {kind[arg.kind]} | {how} |")
    return "\n".join(rows)
