"""RealtimeSTT's ``AudioToTextRecorder`` on harken: the class users construct.

Every RealtimeSTT 1.1.2 argument is accepted with its name and default (see
:mod:`.arguments` for what each becomes); every public method keeps its signature and
blocking behaviour. Unlike RealtimeSTT, the constructor starts nothing: the recorder starts
on first use (``text()``, ``feed_audio()``, ``listen()``, ...), so a module-level instance is
safe under every multiprocessing start method.

How RealtimeSTT's flow maps: harken's recorder listens all the time and cuts recordings
with its VAD; ``wait_audio()`` takes the next finished recording (its audio from the
:class:`~.tap.TapSource` ring), ``transcribe()`` calls ``on_transcription_start(audio)`` and,
unless that returns true, waits for the recording's final from harken's engine program.
Threads: callbacks run on harken's "harken-dispatch" thread; ``text(callback)`` transcribes
on the caller's thread and calls the callback on a new thread, as RealtimeSTT does
(:class:`~.handoff.CallbackThreads` owns them; ``shutdown()`` joins them).

What lives elsewhere: the argument table (:mod:`.arguments`), arguments and callbacks to
harken's and finals back to RealtimeSTT's text and metadata (:mod:`.mapping`), the audio tap
and file feeding (:mod:`.tap`), the recording bookkeeping (:mod:`.recordings`), finals of
other audio (:mod:`.other_audio`) and the callback threads (:mod:`.handoff`). Why this
module is still over the ~400-line guide: its class is RealtimeSTT's public surface, one
constructor of 101 arguments (a signature of ~100 lines) and 19 methods over one recorder.
"""

from __future__ import annotations

import base64
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from os import PathLike
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import RecorderConfig
from ..errors import ConfigError, HarkenError, LifecycleError
from ..events import (
    Event,
    FinalTranscript,
    RecorderState,
    SpeechEnded,
    SpeechStarted,
    WakeWordDetected,
    WakeWordWaiting,
)
from ..recorder import Recorder
from .arguments import ARGUMENTS
from .handoff import CallbackThreads
from .mapping import (
    explain_start_failure,
    final_metadata,
    format_text,
    to_callbacks,
    to_settings,
)
from .other_audio import OtherAudio
from .other_audio import as_float as _as_float
from .recordings import Recordings
from .tap import SAMPLE_RATE, TapSource, feed_files

__all__ = ["AudioToTextRecorder"]

_LOG = logging.getLogger("harken.compat")
MODEL_ENV = "HARKEN_COMPAT_MODEL"
"""Environment variable: a model that stands in for RealtimeSTT's default "tiny" (the
multilingual model harken does not embed) when a program leaves ``model`` unset, e.g.
``HARKEN_COMPAT_MODEL=tiny.en`` runs unchanged English programs offline."""
_HANDLE_BUFFER_OVERFLOW = platform.system() != "Darwin"
_SUPPRESS_TOKENS = [-1]
_CALLBACK_JOIN_S = 5.0
"""shutdown() waits this long, in s, for text() callbacks still running."""
_MAX_PENDING = 64
"""Finished recordings kept for text() before the oldest is dropped (with a warning)."""


class AudioToTextRecorder:
    """A drop-in for ``RealtimeSTT.AudioToTextRecorder`` built on :class:`harken.Recorder`.

    Arguments are RealtimeSTT 1.1.2's, same names and defaults; the README's compatibility
    table (generated from :data:`harken.compat.arguments.ARGUMENTS`) says which are mapped
    onto which harken setting, which are RealtimeSTT-internal no-ops and which are refused
    (ConfigError) unless left at their default. Durations are in seconds, as in RealtimeSTT.
    """

    def __init__(
        self,
        model: str = 'tiny',
        transcription_engine: str = 'faster_whisper',
        transcription_engine_options: dict[str, Any] | None = None,
        download_root: str | None = None,
        language: str = '',
        compute_type: str = 'default',
        input_device_index: int | None = None,
        gpu_device_index: int = 0,
        device: str = 'cuda',
        on_recording_start: Callable[..., Any] | None = None,
        on_recording_stop: Callable[..., Any] | None = None,
        on_transcription_start: Callable[..., Any] | None = None,
        ensure_sentence_starting_uppercase: bool = True,
        ensure_sentence_ends_with_period: bool = True,
        use_microphone: bool = True,
        spinner: bool = True,
        level: int = logging.WARNING,
        batch_size: int = 16,
        enable_realtime_transcription: bool = False,
        use_main_model_for_realtime: bool = False,
        realtime_transcription_engine: str | None = None,
        realtime_transcription_engine_options: dict[str, Any] | None = None,
        realtime_model_type: str = 'tiny',
        realtime_processing_pause: float = 0.2,
        init_realtime_after_seconds: float = 0.2,
        on_realtime_transcription_update: Callable[..., Any] | None = None,
        on_realtime_transcription_stabilized: Callable[..., Any] | None = None,
        realtime_batch_size: int = 16,
        silero_sensitivity: float = 0.4,
        silero_use_onnx: bool | None = None,
        silero_deactivity_detection: bool = False,
        webrtc_sensitivity: int = 3,
        warmup_vad: bool = True,
        post_speech_silence_duration: float = 0.6,
        min_length_of_recording: float = 0.5,
        min_gap_between_recordings: float = 0,
        pre_recording_buffer_duration: float = 1.0,
        pre_recording_buffer_trim_config: Any = None,
        on_vad_start: Callable[..., Any] | None = None,
        on_vad_stop: Callable[..., Any] | None = None,
        on_vad_detect_start: Callable[..., Any] | None = None,
        on_vad_detect_stop: Callable[..., Any] | None = None,
        on_turn_detection_start: Callable[..., Any] | None = None,
        on_turn_detection_stop: Callable[..., Any] | None = None,
        wakeword_backend: str = '',
        openwakeword_model_paths: str | None = None,
        openwakeword_inference_framework: str = 'onnx',
        wake_words: str = '',
        wake_words_sensitivity: float = 0.6,
        wake_word_activation_delay: float = 0.0,
        wake_word_timeout: float = 5.0,
        wake_word_buffer_duration: float = 0.1,
        on_wakeword_detected: Callable[..., Any] | None = None,
        on_wakeword_timeout: Callable[..., Any] | None = None,
        on_wakeword_detection_start: Callable[..., Any] | None = None,
        on_wakeword_detection_end: Callable[..., Any] | None = None,
        on_recorded_chunk: Callable[..., Any] | None = None,
        debug_mode: bool = False,
        handle_buffer_overflow: bool = _HANDLE_BUFFER_OVERFLOW,
        beam_size: int = 5,
        beam_size_realtime: int = 3,
        buffer_size: int = 512,
        sample_rate: int = 16000,
        initial_prompt: str | Iterable[int] | None = None,
        initial_prompt_realtime: str | Iterable[int] | None = None,
        suppress_tokens: list[int] | None = _SUPPRESS_TOKENS,
        print_transcription_time: bool = False,
        early_transcription_on_silence: float = 0,
        allowed_latency_limit: int = 100,
        no_log_file: bool = False,
        use_extended_logging: bool = False,
        faster_whisper_vad_filter: bool = True,
        normalize_audio: bool = False,
        final_transcription_word_timestamps: bool = False,
        start_callback_in_new_thread: bool = False,
        realtime_transcription_use_syllable_boundaries: bool = False,
        realtime_boundary_detector_sensitivity: float = 0.6,
        realtime_boundary_followup_delays: Iterable[float] | None = (0.05, 0.2),
        transcription_executor: Any = None,
        realtime_transcription_executor: Any = None,
        on_realtime_text_stabilization_update: Callable[..., Any] | None = None,
        realtime_punctuation_split_marks: str = 'off',
        silero_backend: str = 'auto',
        silero_onnx_model_path: str | None = None,
        silero_onnx_threads: int = 2,
        deactivity_silence_confirmation_duration: float = 0.16,
        enable_preview_transcription: bool = False,
        preview_model_type: str | None = None,
        preview_transcription_engine: Any = None,
        preview_transcription_engine_options: Any = None,
        preview_transcription_tail_seconds: float = 3.0,
        on_preview_transcription_finished: Callable[..., Any] | None = None,
        preview_transcription_executor: Any = None,
        preview_transcription_min_live_words_for_fuzzy_repair: int = 3,
        ultrafast_realtime_model_type: str | None = None,
        ultrafast_realtime_transcription_engine: Any = None,
        ultrafast_realtime_transcription_engine_options: Any = None,
        on_ultrafast_transcription_update: Callable[..., Any] | None = None,
        on_merged_realtime_transcription_update: Callable[..., Any] | None = None,
        on_realtime_transcription_merge_update: Callable[..., Any] | None = None,
        ultrafast_realtime_max_tail_words: int = 5,
    ) -> None:
        values = dict(locals())
        values.pop("self")
        stand_in = os.environ.get(MODEL_ENV, "").strip()
        if stand_in and model == ARGUMENTS["model"].default:
            _LOG.info("model %r from %s stands in for RealtimeSTT's default %r",
                      stand_in, MODEL_ENV, model)
            model = values["model"] = stand_in
        self._settings = to_settings(values)
        self._config: RecorderConfig = RecorderConfig().with_settings(**self._settings)
        self._values = values
        self._model = model
        self._use_microphone = use_microphone
        self._input_device = input_device_index
        self._level = level
        self._uppercase = ensure_sentence_starting_uppercase
        self._period = ensure_sentence_ends_with_period
        self._word_timestamps = final_transcription_word_timestamps
        self._print_time = print_transcription_time
        self.on_transcription_start = on_transcription_start
        self._on_recorded_chunk = on_recorded_chunk
        self._on_vad_detect_start = on_vad_detect_start
        self._on_vad_detect_stop = on_vad_detect_stop
        self._on_wake_end = on_wakeword_detection_end
        self._callbacks = to_callbacks(values)
        self._recorder: Recorder | None = None
        self._tap: TapSource | None = None
        self._other = OtherAudio(self._settings, self._config.request_timeout_s)
        self._oneshots = self._other.recorders
        """perform_final_transcription's recorders for other audio, by "uses the prompt"."""
        self._lock = threading.Lock()
        self._recordings = Recordings(_MAX_PENDING)
        self._current: int | None = None
        self._aborted = threading.Event()
        self._handoff = CallbackThreads()
        self._mic_on = use_microphone
        self._shut_down = False
        self.audio: NDArray[np.float32] | None = None
        """The last recording taken by :meth:`wait_audio` (float32, 16 kHz, [-1, 1])."""
        self.is_recording = False
        """True while speech is being recorded."""
        self.state = "inactive"
        """"inactive", "listening", "wakeword", "recording" or "transcribing"."""
        self.detected_language: str | None = None
        self.detected_language_probability = 0.0
        self.last_transcription_bytes: NDArray[np.float32] | None = None
        """The audio of the last final (float32, 16 kHz), as RealtimeSTT keeps it."""
        self.last_transcription_bytes_b64: str | None = None
        self.last_transcription_metadata: dict[str, Any] | None = None
        """``language``, ``language_probability``, ``compute_seconds`` and, with word
        timestamps, ``words`` (dicts with ``word``, ``start``, ``end`` in s, ``probability``)."""
        self.listen_start = 0.0
        self.recording_start_time = 0.0
        self.recording_stop_time = 0.0

    # ------------------------------------------------------------------ lifecycle

    @property
    def recorder(self) -> Recorder:
        """The harken Recorder, started on first access."""
        with self._lock:
            if self._shut_down:
                raise LifecycleError("the recorder was shut down; create a new one")
            rec, started = self._recorder, False
            if rec is None:
                rec = self._recorder = self._start()
                started = True
        if started:
            self._set_listening()  # calls on_vad_detect_start: not under the lock
        return rec

    def _start(self) -> Recorder:
        from ..sources.microphone import MicrophoneSource

        logging.getLogger("harken").setLevel(self._level)
        mic = MicrophoneSource(self._input_device) if self._use_microphone else None
        keep_s = self._config.vad.max_utterance_s + self._config.vad.pre_roll_ms / 1000 + 5.0
        tap = TapSource(mic, self._on_recorded_chunk, keep_s)
        tap.mic_on = self._mic_on and mic is not None
        rec = Recorder(self._config, source=tap, on_event=self._on_event, **self._callbacks)
        try:
            rec.start()
        except HarkenError as exc:
            rec.close()
            raise explain_start_failure(self._model, exc) from exc
        self._tap = tap
        return rec

    def shutdown(self) -> None:
        """Stop everything and release the models; idempotent."""
        with self._lock:
            self._shut_down = True
            rec = self._recorder
        self._aborted.set()
        if rec is not None:
            rec.close()
        self._other.close()
        self._handoff.join(_CALLBACK_JOIN_S)
        self.state = "inactive"

    def __enter__(self) -> AudioToTextRecorder:
        return self

    def __exit__(self, exc_type: object, exc_value: object, traceback: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ events

    def _set_listening(self) -> None:
        self.listen_start = time.time()
        self.state = "listening"
        if self._on_vad_detect_start is not None:
            self._on_vad_detect_start()

    def _on_event(self, event: Event) -> None:
        """Runs on harken-dispatch: keep the recording bookkeeping."""
        if isinstance(event, SpeechStarted):
            self.is_recording = True
            self.recording_start_time = time.time()
            self.state = "recording"
            if self._on_vad_detect_stop is not None:
                self._on_vad_detect_stop()
        elif isinstance(event, SpeechEnded):
            self.is_recording = False
            self.recording_stop_time = time.time()
            if not event.discarded:
                self._recordings.add(event.utterance_id, event.start, event.end)
            self._set_listening()
        elif isinstance(event, WakeWordWaiting):
            self.state = "wakeword"
        elif isinstance(event, WakeWordDetected):
            self.state = "listening"

    # ------------------------------------------------------------------ recording

    def start(self, frames: Iterable[bytes] | None = None) -> AudioToTextRecorder:
        """Start recording now, without waiting for voice activity.

        Args:
            frames: audio (16 kHz int16 bytes) to begin the recording with.
        """
        rec = self.recorder
        rec.start_utterance()
        for frame in frames or ():
            self.feed_audio(frame)
        return self

    def stop(self, backdate_stop_seconds: float = 0.0,
             backdate_resume_seconds: float = 0.0) -> AudioToTextRecorder:
        """Stop the recording started with :meth:`start` (or by speech); it is transcribed.

        Raises:
            ConfigError: a backdate other than 0; harken ends recordings at the audio it
                has received.
        """
        for name, value in (("backdate_stop_seconds", backdate_stop_seconds),
                            ("backdate_resume_seconds", backdate_resume_seconds)):
            if value:
                raise ConfigError(f"{name}={value!r}: harken ends the recording at the audio "
                                  "received so far; call stop() when it should end instead")
        self.recorder.end_utterance()
        return self

    def listen(self) -> None:
        """Start listening for voice activity (harken listens from start on)."""
        self.recorder  # noqa: B018 - starts it
        self._set_listening()

    def wakeup(self) -> None:
        """Act as if the wake word was just spoken: speech starting within
        ``wake_word_timeout`` is recorded and transcribed (no recording is forced on
        silence). Without wake words the recorder listens already: nothing changes.
        """
        self.recorder.wake_up()
        if self.state == "wakeword":  # RealtimeSTT's wakeword -> listening state change
            if self._on_wake_end is not None:
                self._on_wake_end()
            self._set_listening()

    def abort(self) -> None:
        """Make a waiting :meth:`text` / :meth:`wait_audio` call return (text: "")."""
        self._aborted.set()
        self._recordings.wake()

    def set_microphone(self, microphone_on: bool = True) -> None:
        """Turn the microphone's audio on or off (fed audio is taken either way).

        Raises:
            LifecycleError: turning it on in a recorder made with ``use_microphone=False``
                (it has no microphone open).
        """
        if microphone_on and not self._use_microphone:
            raise LifecycleError("set_microphone(True) needs a recorder made with "
                                 "use_microphone=True; this one takes fed audio only")
        self._mic_on = bool(microphone_on)
        if self._tap is not None:
            self._tap.mic_on = self._mic_on and self._use_microphone

    def clear_audio_queue(self) -> None:
        """Drop finished recordings no :meth:`text` call has taken yet."""
        self._recordings.clear()

    def has_pending_recordings(self) -> bool:
        """True when finished recordings wait for :meth:`text`."""
        return self._recordings.waiting()

    def wait_audio(self) -> None:
        """Block until the next recording is finished and load it into :attr:`audio`.

        Returns early (leaving :attr:`audio` unchanged) after :meth:`abort` or
        :meth:`shutdown`.
        """
        rec = self.recorder

        def stop() -> bool:
            if self._aborted.is_set() or self._shut_down:
                return True
            if rec.state is RecorderState.CLOSED:
                raise LifecycleError("the recorder stopped while waiting for audio")
            return False

        taken = self._recordings.take(stop)
        if taken is None:
            return
        uid, start, end = taken
        assert self._tap is not None
        self._current = uid
        self.audio = self._tap.slice(int(round(start * SAMPLE_RATE)),
                                     int(round(end * SAMPLE_RATE)))

    # ------------------------------------------------------------------ transcription

    def text(self, on_transcription_finished: Callable[[str | None], Any] | None = None,
             word_timestamps: bool | None = None) -> str | None:
        """Wait for the next recording and return its final text.

        Args:
            on_transcription_finished: when given, the text is handed to it on a new thread
                (as RealtimeSTT does) and None is returned at once; an exception it raises
                is logged and raised by the next ``text()`` call.
            word_timestamps: override ``final_transcription_word_timestamps`` for this call.

        Returns:
            The text; "" after :meth:`abort` or :meth:`shutdown`; None when
            ``on_transcription_start`` returned true (the final was skipped) or a callback
            was given.
        """
        self._handoff.check()
        self._aborted.clear()
        self.wait_audio()
        if self._aborted.is_set() or self._shut_down or self._current is None:
            return ""
        text = self.transcribe(word_timestamps)
        if on_transcription_finished is not None:
            self._handoff.run(on_transcription_finished, text)
            return None
        return text

    def transcribe(self, word_timestamps: bool | None = None) -> str | None:
        """Transcribe the recording loaded by :meth:`wait_audio`.

        Calls ``on_transcription_start(audio)`` first; a true return skips the final and
        returns None.
        """
        audio = np.zeros(0, np.float32) if self.audio is None else self.audio.copy()
        self.state = "transcribing"
        callback = self.on_transcription_start
        if callback is not None and callback(audio):
            if self._current is not None:
                self._recordings.skip(self._current)
                self._current = None
            self.state = "listening"
            return None
        return self.perform_final_transcription(audio, word_timestamps=word_timestamps)

    def perform_final_transcription(self, audio_bytes: NDArray[Any] | None = None,
                                    use_prompt: bool = True,
                                    word_timestamps: bool | None = None) -> str:
        """Return the final text of ``audio_bytes`` (default: the loaded recording).

        The loaded recording's final is already being computed by harken's engine program;
        other audio (float32 in [-1, 1] or int16, 16 kHz) is transcribed by a second
        engine program started on first use. ``use_prompt=False`` needs that second path.
        """
        words = self._word_timestamps if word_timestamps is None else word_timestamps
        current = self._current
        if audio_bytes is None and current is None:
            return ""
        if current is not None and use_prompt and (
                audio_bytes is None or audio_bytes is self.audio or (
                    self.audio is not None and np.array_equal(audio_bytes, self.audio))):
            self._current = None
            audio = self.audio if self.audio is not None else np.zeros(0, np.float32)
            final = self._wait_final(current)
        else:
            audio = _as_float(audio_bytes)
            if audio.size == 0:
                return ""
            final = self._other.transcribe(audio, use_prompt)
        self.state = "recording" if self.is_recording else "listening"
        if final is None:
            return ""
        return self._finish(final, audio, words)

    def _wait_final(self, uid: int) -> FinalTranscript | None:
        rec = self.recorder

        def next_final() -> FinalTranscript | None:
            try:
                return rec.next_final(timeout=0.1)
            except TimeoutError:
                return None

        return self._recordings.final(uid, next_final, self._aborted.is_set)

    def _finish(self, final: FinalTranscript, audio: NDArray[np.float32], words: bool) -> str:
        if self._print_time:
            _LOG.info("final transcribed in %.2f s", final.compute_seconds)
        self.detected_language = final.language if final.language_probability else None
        self.detected_language_probability = final.language_probability or 0.0
        self.last_transcription_bytes = audio.copy()
        self.last_transcription_bytes_b64 = base64.b64encode(audio.tobytes()).decode("ascii")
        self.last_transcription_metadata = final_metadata(final, words)
        return format_text(final.text, self._uppercase, self._period)

    # ------------------------------------------------------------------ pushed audio

    def feed_audio(self, chunk: bytes | NDArray[Any] | str | PathLike[str],
                   original_sample_rate: int = 16000) -> None:
        """Push audio: int16 bytes, a numpy array at ``original_sample_rate`` Hz, or a
        file path (fed as :meth:`feed_audio_file` does).
        """
        if isinstance(chunk, (str, PathLike)):
            self.feed_audio_file(chunk)
            return
        self.recorder  # noqa: B018 - starts it
        assert self._tap is not None
        self._tap.feed(chunk, original_sample_rate)

    def feed_audio_file(self, filenames: str | PathLike[str] | Iterable[str | PathLike[str]],
                        normalize: bool = True, target_peak: float = 0.95, *,
                        realtime: bool = True) -> None:
        """Decode audio file(s) and feed them, paced at real time as RealtimeSTT does.

        Args:
            filenames: a path or several.
            normalize: scale each file so its peak is ``target_peak``.
            target_peak: the peak after normalising (0 to 1).
            realtime: harken only: False feeds as fast as the recorder takes it.
        """
        paths = [filenames] if isinstance(filenames, (str, PathLike)) else filenames
        feed_files(paths, self.feed_audio, normalize=normalize, target_peak=target_peak,
                   realtime=realtime)

    def flush_audio_input(self) -> bool:
        """RealtimeSTT queues a partial chunk here; harken forwards every chunk at once, so
        nothing is held back: always False.
        """
        return False

    def flush_buffered_audio(self, min_abs_level: int = 50) -> bool:
        """Like :meth:`flush_audio_input`: nothing is buffered, so False."""
        return False

    def drain_audio_input(self, timeout: float | None = None) -> bool:
        """Wait until the fed audio is processed, its finals are done and its callbacks
        have run; True if so within ``timeout`` seconds (None: no limit).
        """
        rec = self.recorder
        deadline = None if timeout is None else time.monotonic() + timeout
        if not rec.wait_idle(timeout):
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return rec.wait_delivered(left)

    @staticmethod
    def format_number(num: float) -> str:
        """RealtimeSTT's two-digit timestamp fragment: 123.4567 -> "23.45"."""
        integer, decimal = f"{num:.10f}".split(".")
        return f"{integer[-2:]}.{decimal[:2]}"

