"""RealtimeSTT-compatible ``AudioToTextRecorder``: switch by changing one import.

``from harken.compat import AudioToTextRecorder`` accepts RealtimeSTT's common constructor
arguments and methods. Unlike RealtimeSTT, the constructor starts nothing: the recorder
starts on first use (``text()``, ``feed_audio()``, ``start()``), so a module-level instance
is safe under every multiprocessing start method. Arguments harken does not support raise
:class:`~harken.errors.ConfigError` naming them when given a value other than
RealtimeSTT's default; they are never silently ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from numpy.typing import NDArray

from .config import RecorderConfig
from .errors import ConfigError, LifecycleError
from .events import RecorderState
from .recorder import Recorder
from .units import s_to_ms

__all__ = ["AudioToTextRecorder"]

_LOG = logging.getLogger(__name__)

# RealtimeSTT arguments harken has no equivalent for yet, with the values that mean "off".
_UNSUPPORTED_DEFAULTS: dict[str, Any] = {
    "on_recorded_chunk": None,
    "on_turn_detection_start": None,
    "on_turn_detection_stop": None,
    "min_gap_between_recordings": 0,
    "normalize_audio": False,
    "gpu_device_index": 0,
    "batch_size": 16,
    "sample_rate": 16000,
    "buffer_size": 512,
}
# Arguments that only tune features above while those are off, or cosmetic/logging choices
# with no effect on results: accepted with any value.
_ACCEPTED = {
    "spinner", "silero_use_onnx", "silero_deactivity_detection", "use_main_model_for_realtime",
    "realtime_model_type", "realtime_batch_size", "initial_prompt_realtime",
    "wake_word_buffer_duration", "openwakeword_inference_framework", "debug_mode",
    "handle_buffer_overflow", "print_transcription_time", "allowed_latency_limit",
    "no_log_file", "use_extended_logging", "faster_whisper_vad_filter",
    "start_callback_in_new_thread", "on_vad_detect_start", "on_vad_detect_stop",
}


def _wake_settings(wake_words: str, backend: str, model_paths: str | None,
                   sensitivity: float, timeout: float, delay: float) -> dict[str, Any]:
    """Map RealtimeSTT's wake word arguments onto harken's ``wake_*`` settings.

    An empty ``wakeword_backend`` means Porcupine when every word is one of its built-in
    keywords and pvporcupine is installed (RealtimeSTT's usual setup), else the phrase
    backend, which takes any phrase. ``openwakeword_model_paths`` (comma-separated .tflite
    files) are the openWakeWord models.
    """
    import importlib.util

    from .wake.names import PORCUPINE_KEYWORDS, normalize_backend, parse_wake_words

    key = (backend or "").strip().lower()
    if key in ("openwakewords", "oww", "openwakeword"):
        key = "openwakeword"
    if key == "openwakeword" and model_paths:
        words: str = model_paths
    elif not wake_words:
        return {}
    else:
        words = wake_words
    if not key:
        builtin = all(w.lower() in PORCUPINE_KEYWORDS for w in parse_wake_words(words))
        key = ("porcupine" if builtin and importlib.util.find_spec("pvporcupine") is not None
               else "phrase")
    return {"wake_words": words, "wake_backend": normalize_backend(key),
            "wake_sensitivity": sensitivity, "wake_timeout_s": timeout,
            "wake_activation_delay_s": delay}


def _partial_adapter(update: Callable[[str], Any] | None,
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


class AudioToTextRecorder:
    """A drop-in for ``RealtimeSTT.AudioToTextRecorder`` built on :class:`harken.Recorder`.

    Args mirror RealtimeSTT's (see its documentation); the mapping is:
    ``model`` (default "tiny.en", the embedded model), ``language`` ("" detects),
    ``compute_type``, ``device``, ``download_root``, ``beam_size``, ``initial_prompt``,
    ``suppress_tokens``, ``input_device_index``, ``use_microphone``,
    ``silero_sensitivity`` (speech threshold = 1 - sensitivity), ``webrtc_sensitivity``,
    ``post_speech_silence_duration`` (s), ``min_length_of_recording`` (s),
    ``pre_recording_buffer_duration`` (s), ``on_recording_start``/``on_recording_stop``
    (speech start/end), ``on_vad_start``/``on_vad_stop`` (the same), ``on_transcription_start``,
    ``ensure_sentence_starting_uppercase``, ``ensure_sentence_ends_with_period``, ``level``
    (log level of the "harken" logger), ``enable_realtime_transcription`` (live partials with
    the main model), ``on_realtime_transcription_update`` / ``..._stabilized`` (text of each
    partial / each partial whose stable part grew), ``realtime_processing_pause`` (s of new
    audio between partial passes), ``init_realtime_after_seconds``, ``beam_size_realtime``,
    ``early_transcription_on_silence`` (any value > 0 turns on speculative early finals; the
    final's audio is cut at a fixed 128 ms of silence), ``wake_words`` (any phrase with the
    phrase backend; Porcupine keywords use Porcupine when ``wakeword_backend`` is empty and
    pvporcupine is installed), ``wakeword_backend`` ("pvporcupine", "oww"/"openwakeword",
    or "phrase"), ``openwakeword_model_paths``, ``wake_words_sensitivity``,
    ``wake_word_timeout`` (s), ``wake_word_activation_delay`` (s),
    ``on_wakeword_detected``, ``on_wakeword_timeout``, ``on_wakeword_detection_start``
    (waiting for a wake word begins) and ``on_wakeword_detection_end`` (a wake word was
    heard).
    """

    def __init__(
        self,
        model: str = "tiny.en",
        language: str = "",
        compute_type: str = "default",
        input_device_index: int | None = None,
        device: str = "cpu",
        on_recording_start: Callable[[], Any] | None = None,
        on_recording_stop: Callable[[], Any] | None = None,
        on_transcription_start: Callable[..., Any] | None = None,
        ensure_sentence_starting_uppercase: bool = True,
        ensure_sentence_ends_with_period: bool = True,
        use_microphone: bool = True,
        level: int = logging.WARNING,
        silero_sensitivity: float = 0.4,
        webrtc_sensitivity: int = 3,
        post_speech_silence_duration: float = 0.6,
        min_length_of_recording: float = 0.5,
        pre_recording_buffer_duration: float = 1.0,
        on_vad_start: Callable[[], Any] | None = None,
        on_vad_stop: Callable[[], Any] | None = None,
        beam_size: int = 5,
        initial_prompt: str | None = None,
        suppress_tokens: list[int] | None = None,
        download_root: str | None = None,
        enable_realtime_transcription: bool = False,
        on_realtime_transcription_update: Callable[[str], Any] | None = None,
        on_realtime_transcription_stabilized: Callable[[str], Any] | None = None,
        realtime_processing_pause: float = 0.2,
        init_realtime_after_seconds: float = 0.2,
        beam_size_realtime: int = 1,
        early_transcription_on_silence: int = 0,
        wake_words: str = "",
        wakeword_backend: str = "",
        openwakeword_model_paths: str | None = None,
        wake_words_sensitivity: float = 0.6,
        wake_word_timeout: float = 5.0,
        wake_word_activation_delay: float = 0.0,
        on_wakeword_detected: Callable[[], Any] | None = None,
        on_wakeword_timeout: Callable[[], Any] | None = None,
        on_wakeword_detection_start: Callable[[], Any] | None = None,
        on_wakeword_detection_end: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        unsupported = []
        for key, value in kwargs.items():
            if key in _UNSUPPORTED_DEFAULTS:
                if value != _UNSUPPORTED_DEFAULTS[key] and value is not None:
                    unsupported.append(f"{key}={value!r}")
            elif key not in _ACCEPTED:
                raise ConfigError(f"AudioToTextRecorder got an unknown argument {key!r}")
        if unsupported:
            raise ConfigError("harken's AudioToTextRecorder does not support these RealtimeSTT "
                              f"arguments yet: {', '.join(unsupported)}. Remove them, or use "
                              "harken.Recorder directly.")
        if not 0.0 < silero_sensitivity < 1.0:
            raise ConfigError(f"silero_sensitivity must be between 0 and 1, "
                              f"got {silero_sensitivity!r}")
        options: dict[str, Any] = {}
        if suppress_tokens is not None:
            options["suppress_tokens"] = list(suppress_tokens)
        self._config: RecorderConfig = RecorderConfig().with_settings(**dict(
            model=model,
            language=language or None,
            compute_type="int8" if compute_type in ("default", "auto") and device == "cpu"
            else compute_type,
            device=device,
            beam_size=beam_size,
            initial_prompt=initial_prompt,
            download_root=download_root,
            options=options,
            silero_threshold=round(1.0 - silero_sensitivity, 4),
            webrtc_sensitivity=webrtc_sensitivity,
            post_speech_silence_ms=s_to_ms(post_speech_silence_duration),
            min_utterance_ms=s_to_ms(min_length_of_recording),
            pre_roll_ms=s_to_ms(pre_recording_buffer_duration),
            partials=bool(enable_realtime_transcription),
            partial_interval_ms=s_to_ms(realtime_processing_pause),
            partial_min_ms=s_to_ms(init_realtime_after_seconds),
            partial_beam_size=beam_size_realtime,
            early_final=bool(early_transcription_on_silence),
            **_wake_settings(wake_words, wakeword_backend, openwakeword_model_paths,
                             wake_words_sensitivity, wake_word_timeout,
                             wake_word_activation_delay),
        ))
        self._uppercase = ensure_sentence_starting_uppercase
        self._period = ensure_sentence_ends_with_period
        self._use_microphone = use_microphone
        self._input_device = input_device_index
        self._level = level

        def both(*cbs: Callable[[], Any] | None) -> Callable[[], None] | None:
            given = [cb for cb in cbs if cb is not None]
            if not given:
                return None

            def call_all() -> None:
                for cb in given:
                    cb()

            return call_all

        self._callbacks: dict[str, Any] = {
            "on_speech_start": both(on_recording_start, on_vad_start),
            "on_speech_end": both(on_recording_stop, on_vad_stop),
            "on_transcription_start": on_transcription_start,
            "on_wake_word_timeout": on_wakeword_timeout,
            "on_wake_word_waiting": on_wakeword_detection_start,
        }
        heard = both(on_wakeword_detected, on_wakeword_detection_end)
        if heard is not None:
            self._callbacks["on_wake_word"] = lambda word: heard()
        if on_realtime_transcription_update or on_realtime_transcription_stabilized:
            self._callbacks["on_partial"] = _partial_adapter(
                on_realtime_transcription_update, on_realtime_transcription_stabilized)
        self._recorder: Recorder | None = None
        self._lock = threading.Lock()
        self._aborted = threading.Event()

    @property
    def recorder(self) -> Recorder:
        """The harken Recorder, started on first access."""
        with self._lock:
            if self._recorder is None:
                logging.getLogger("harken").setLevel(self._level)
                rec = Recorder(self._config, source="mic" if self._use_microphone else "push",
                               input_device=self._input_device, **self._callbacks)
                rec.start()
                self._recorder = rec
            elif self._recorder.state is RecorderState.CLOSED:
                raise LifecycleError("the recorder was shut down; create a new one")
            return self._recorder

    def _format(self, text: str) -> str:
        text = text.strip()
        if not text:
            return text
        if self._uppercase:
            text = text[0].upper() + text[1:]
        if self._period and text[-1].isalnum():
            text += "."
        return text

    def text(self, on_transcription_finished: Callable[[str], Any] | None = None) -> str | None:
        """Wait for the next utterance and return its text (or pass it to the callback)."""
        rec = self.recorder
        self._aborted.clear()
        while True:
            try:
                final = rec.next_final(timeout=0.2)
                break
            except TimeoutError:
                if self._aborted.is_set():
                    return ""
        text = self._format(final.text)
        if on_transcription_finished is not None:
            on_transcription_finished(text)
            return None
        return text

    def feed_audio(self, chunk: bytes | NDArray[Any], original_sample_rate: int = 16000) -> None:
        """Push int16 bytes or a numpy array of audio (``use_microphone=False``)."""
        if self._use_microphone:
            raise LifecycleError("feed_audio() needs AudioToTextRecorder(use_microphone=False)")
        self.recorder.feed_audio(chunk, original_sample_rate)

    def start(self) -> AudioToTextRecorder:
        """Start recording an utterance now, without waiting for voice activity."""
        self.recorder.start_utterance()
        return self

    def stop(self) -> AudioToTextRecorder:
        """Stop the utterance started with :meth:`start`; it is transcribed."""
        self.recorder.end_utterance()
        return self

    def abort(self) -> None:
        """Make a waiting :meth:`text` call return an empty string."""
        self._aborted.set()

    def wait_audio(self) -> None:
        """Wait until the pushed audio so far is processed and its finals are ready."""
        self.recorder.flush()

    def shutdown(self) -> None:
        """Stop everything and release the model; idempotent."""
        with self._lock:
            rec = self._recorder
        if rec is not None:
            rec.close()

    def __enter__(self) -> AudioToTextRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
