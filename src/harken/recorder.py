"""The synchronous facade: a source, the pure pipeline, the engine process and callbacks.

Threads (all named "harken-*", all owned and joined by :meth:`Recorder.close`):

- the source's own thread(s) write audio into the inbox (bounded; backpressure blocks them);
- "harken-pipeline" runs VAD and segmentation and sends requests to the engine process,
  never waiting for it;
- the engine process's reader/writer threads post results back into the inbox;
- "harken-dispatch" calls user callbacks, one at a time, in event order.

Nothing is started before :meth:`Recorder.start`; the constructor only stores and validates.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._dispatch import Dispatcher
from ._inbox import Inbox
from .config import (
    SAMPLE_RATE,
    EngineConfig,
    RealtimeConfig,
    RecorderConfig,
    VadConfig,
    WakeConfig,
)
from .core.pipeline import CancelRequest, FinalFailed
from .engine.base import EngineOutput, TranscribeRequest
from .errors import ConfigError, LifecycleError
from .events import (
    ErrorEvent,
    Event,
    FinalTranscript,
    PartialTranscript,
    RecorderState,
    RecordingStarted,
    RecordingStopped,
    SpeechEnded,
    SpeechStarted,
    StateChanged,
    TranscriptionStarted,
    WakeWordDetected,
    WakeWordTimeout,
    WakeWordWaiting,
)
from .sources.base import AudioSource
from .vad.base import VoiceActivityDetector
from .wake.base import WakeWordDetector

if TYPE_CHECKING:
    from .core.pipeline import Output, SpeechPipeline
    from .wake.phrase import PhraseWakeWord
    from .worker.process import EngineProcess

__all__ = ["Recorder", "transcribe_file"]

_LOG = logging.getLogger(__name__)

_ENGINE_FIELDS = {f.name for f in dataclasses.fields(EngineConfig)} - {"engine"}
_VAD_FIELDS = {f.name for f in dataclasses.fields(VadConfig)} - {"backend"}
_REALTIME_FIELDS = {f.name for f in dataclasses.fields(RealtimeConfig)}
_RECORDER_FIELDS = {f.name for f in dataclasses.fields(RecorderConfig)} - {
    "engine", "vad", "realtime", "wake"}
_WAKE_KEYS = {  # Recorder keyword -> WakeConfig field
    "wake_words": "words", "wake_backend": "backend", "wake_sensitivity": "sensitivity",
    "wake_timeout_s": "timeout_s", "wake_activation_delay_s": "activation_delay_s",
}
_FEED_TIMEOUT_S = 30.0
_FILE_MAX_PENDING = 2  # finals in flight before a file source is held back

Callback = Callable[..., Any]


def build_config(config: RecorderConfig | None, settings: dict[str, Any]) -> RecorderConfig:
    """Apply keyword shortcuts (``model="base"``, ``post_speech_silence_ms=300``, ...) to a config.

    ``engine`` names the engine backend and ``vad`` the VAD backend; ``wake_words``,
    ``wake_backend``, ``wake_sensitivity``, ``wake_timeout_s`` and
    ``wake_activation_delay_s`` set :class:`~harken.config.WakeConfig`. Unknown names raise
    ConfigError listing the valid ones.
    """
    config = config or RecorderConfig()
    engine: dict[str, Any] = {}
    vad: dict[str, Any] = {}
    realtime: dict[str, Any] = {}
    wake: dict[str, Any] = {}
    top: dict[str, Any] = {}
    unknown = []
    for key, value in settings.items():
        if key == "engine":
            engine["engine"] = value
        elif key == "vad":
            vad["backend"] = value
        elif key in _ENGINE_FIELDS:
            engine[key] = value
        elif key in _VAD_FIELDS:
            vad[key] = value
        elif key in _REALTIME_FIELDS:
            realtime[key] = value
        elif key in _WAKE_KEYS:
            wake[_WAKE_KEYS[key]] = value
        elif key in _RECORDER_FIELDS:
            top[key] = value
        else:
            unknown.append(key)
    if unknown:
        valid = sorted(_ENGINE_FIELDS | _VAD_FIELDS | _REALTIME_FIELDS | _RECORDER_FIELDS
                       | set(_WAKE_KEYS) | {"engine", "vad"})
        raise ConfigError(f"unknown Recorder option(s): {', '.join(sorted(unknown))}. "
                          f"Valid options: {', '.join(valid)}")
    if engine:
        top["engine"] = dataclasses.replace(config.engine, **engine)
    if vad:
        top["vad"] = dataclasses.replace(config.vad, **vad)
    if realtime:
        top["realtime"] = dataclasses.replace(config.realtime, **realtime)
    if wake:
        top["wake"] = dataclasses.replace(config.wake, **wake)
    return dataclasses.replace(config, **top) if top else config


def _make_source(source: AudioSource | str | Path, input_device: int | str | None) -> AudioSource:
    if not isinstance(source, (str, Path)):
        if not isinstance(source, AudioSource):
            raise ConfigError(f"source must be 'mic', 'push', a file path or an AudioSource, "
                              f"got {source!r}")
        return source
    if source in ("mic", "microphone"):
        from .sources.microphone import MicrophoneSource

        return MicrophoneSource(input_device)
    if source == "push":
        from .sources.push import PushSource

        return PushSource()
    from .sources.file import FileSource

    return FileSource(str(source))


class _Sink:
    """The AudioSink the recorder hands its source (runs on the source's thread)."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def write(self, samples: NDArray[np.float32]) -> None:
        self._recorder._inbox.put_audio(samples, _FEED_TIMEOUT_S)

    def end(self) -> None:
        self._recorder._inbox.put_ordered(("end",))

    def error(self, exc: BaseException) -> None:
        self._recorder._inbox.put_control(("error", exc, False, "source"))


class Recorder:
    """Real-time speech-to-text from a microphone, a file or pushed audio.

    Construction stores and validates settings only; :meth:`start` (or ``with``) loads the
    model in the engine process, opens the source and starts the threads; :meth:`close`
    stops everything within a bounded time.

    Args:
        config: full settings; keyword ``settings`` override single fields of it, e.g.
            ``model="tiny.en"``, ``language="en"``, ``beam_size=1``,
            ``post_speech_silence_ms=400``, ``vad="silero"``, ``engine="scripted"``.
        source: "mic" (default), "push" (use :meth:`feed_audio`), a file path, or any
            :class:`~harken.sources.base.AudioSource`.
        input_device: microphone index or name (with ``source="mic"``).
        on_final: ``on_final(text)`` with the text of each final transcript; use
            ``on_event`` for the full :class:`FinalTranscript` objects.
        on_partial: ``on_partial(stable, unstable)`` for interim text.
        on_speech_start: ``on_speech_start()`` when voice activity starts.
        on_speech_end: ``on_speech_end()`` when it ends.
        on_transcription_start: ``on_transcription_start()`` when a final is requested.
        on_recording_start: ``on_recording_start()`` when audio capture starts or resumes.
        on_recording_stop: ``on_recording_stop()`` when it pauses or stops.
        on_error: ``on_error(exc)`` for every error in a background thread or process.
        on_wake_word: ``on_wake_word(word)`` when a wake word is heard (with ``wake_words``).
        on_wake_word_timeout: ``on_wake_word_timeout()`` when no speech followed it in time.
        on_wake_word_waiting: ``on_wake_word_waiting()`` when the recorder starts waiting for
            a wake word (at start, after each command and after a timeout).
        on_event: ``on_event(event)`` for every event object.
        vad_detector: a ready VoiceActivityDetector to use instead of building one from
            the config (tests, custom VADs).

    All callbacks run on one thread, "harken-dispatch", in event order.
    """

    def __init__(
        self,
        config: RecorderConfig | None = None,
        *,
        source: AudioSource | str | Path = "mic",
        input_device: int | str | None = None,
        on_final: Callback | None = None,
        on_partial: Callback | None = None,
        on_speech_start: Callback | None = None,
        on_speech_end: Callback | None = None,
        on_transcription_start: Callback | None = None,
        on_recording_start: Callback | None = None,
        on_recording_stop: Callback | None = None,
        on_error: Callback | None = None,
        on_wake_word: Callback | None = None,
        on_wake_word_timeout: Callback | None = None,
        on_wake_word_waiting: Callback | None = None,
        on_event: Callback | None = None,
        vad_detector: VoiceActivityDetector | None = None,
        **settings: Any,
    ) -> None:
        self.config = build_config(config, settings)
        for name, cb in (("on_final", on_final), ("on_partial", on_partial),
                         ("on_speech_start", on_speech_start), ("on_speech_end", on_speech_end),
                         ("on_transcription_start", on_transcription_start),
                         ("on_recording_start", on_recording_start),
                         ("on_recording_stop", on_recording_stop), ("on_error", on_error),
                         ("on_wake_word", on_wake_word),
                         ("on_wake_word_timeout", on_wake_word_timeout),
                         ("on_wake_word_waiting", on_wake_word_waiting),
                         ("on_event", on_event)):
            if cb is not None and not callable(cb):
                raise ConfigError(f"{name} must be callable, got {cb!r}")
        if isinstance(source, str) and source not in ("mic", "microphone", "push") \
                and not Path(source).exists():
            raise ConfigError(f"source must be 'mic', 'push' or an existing file; "
                              f"no file at {source!r}")
        self._source_spec = source
        self._input_device = input_device
        self._vad_detector = vad_detector
        self._callbacks = {
            FinalTranscript: on_final, PartialTranscript: on_partial,
            SpeechStarted: on_speech_start, SpeechEnded: on_speech_end,
            TranscriptionStarted: on_transcription_start,
            RecordingStarted: on_recording_start, RecordingStopped: on_recording_stop,
            ErrorEvent: on_error, WakeWordDetected: on_wake_word,
            WakeWordTimeout: on_wake_word_timeout, WakeWordWaiting: on_wake_word_waiting,
        }
        self._on_event = on_event
        self._state = RecorderState.CREATED
        self._state_lock = threading.RLock()
        self._source: AudioSource | None = None
        self._vad: VoiceActivityDetector | None = None
        self._wake_detector: WakeWordDetector | None = None
        self._engine: EngineProcess | None = None
        self._dispatcher: Dispatcher | None = None
        self._pipeline_thread: threading.Thread | None = None
        self._inbox = Inbox(int(self.config.max_backlog_s * SAMPLE_RATE))
        self._results: collections.deque[FinalTranscript | BaseException] = \
            collections.deque(maxlen=10_000)
        self._results_cond = threading.Condition()
        self._fatal: BaseException | None = None
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._paused = False
        self._ended = False  # the source reported end of stream
        self._requests: dict[int, TranscribeRequest] = {}
        self._idle = threading.Condition()
        self._position = 0
        self.finals: int = 0
        """Final transcripts delivered so far."""

    # ----------------------------------------------------------------- lifecycle

    @property
    def state(self) -> RecorderState:
        """The lifecycle state."""
        return self._state

    @property
    def position(self) -> float:
        """Seconds of audio processed by the pipeline so far."""
        return self._position / SAMPLE_RATE

    @property
    def source(self) -> AudioSource | None:
        """The running source (None before start)."""
        return self._source

    @property
    def engine_pid(self) -> int | None:
        """Process id of the engine process, or None when it is not running."""
        engine = self._engine
        return None if engine is None else engine.pid

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Recorder:
        """Load the model (in the engine process), open the source and start listening.

        Blocks until the engine is ready (up to ``config.start_timeout_s``). On failure,
        whatever was started is stopped again before the exception propagates.

        Raises:
            LifecycleError: start() was called before, or after close().
            EngineError: the engine could not load (e.g. the model path does not exist).
            WorkerStartTimeout, WorkerCrashed, BackendNotInstalled, AudioSourceError.
        """
        with self._state_lock:
            if self._state is not RecorderState.CREATED:
                raise LifecycleError(f"start() was already called (state: {self._state.value}); "
                                     "create a new Recorder to start again")
            self._set_state(RecorderState.STARTING)
        try:
            self._start()
        except BaseException as exc:
            closed_meanwhile = self.state is not RecorderState.STARTING
            self._shutdown(timeout=self.config.close_timeout_s, flush=False)
            if closed_meanwhile:
                raise LifecycleError("close() was called while start() was running") from exc
            raise
        with self._state_lock:
            closed_meanwhile = self.state is not RecorderState.STARTING
            if not closed_meanwhile:
                self._set_state(RecorderState.RUNNING)
        if closed_meanwhile:  # close() ran during start(): undo what start() made since
            self._shutdown(timeout=self.config.close_timeout_s, flush=False)
            raise LifecycleError("close() was called while start() was running")
        self._emit(RecordingStarted())
        return self

    def _start(self) -> None:
        from .worker.process import EngineProcess

        source = _make_source(self._source_spec, self._input_device)
        if self._vad_detector is not None:
            vad = self._vad_detector
        else:
            from .vad.factory import create_vad

            vad = create_vad(self.config.vad)
        vad.load()
        self._vad = vad
        wake = self._load_wake(self.config.wake)
        listeners: list[Callable[[Event], None]] = [self._call_callbacks]
        self._dispatcher = Dispatcher(listeners)
        self._dispatcher.start()
        self._engine = EngineProcess(
            self.config.engine,
            on_result=self._engine_result,
            on_failed=self._engine_failed,
            on_error=self._engine_error,
            start_timeout_s=self.config.start_timeout_s,
            request_timeout_s=self.config.request_timeout_s,
            max_attempts=self.config.max_attempts,
        )
        self._engine.start()
        from .core.pipeline import SpeechPipeline

        pipeline = SpeechPipeline(vad, self.config.vad, self.config.realtime, wake=wake,
                                  wake_config=self.config.wake)
        self._pipeline_thread = threading.Thread(
            target=self._run_pipeline, args=(pipeline,), name="harken-pipeline", daemon=True)
        self._pipeline_thread.start()
        self._source = source
        source.start(_Sink(self))

    def _load_wake(self, config: WakeConfig) -> WakeWordDetector | PhraseWakeWord | None:
        """Build the wake word backend; a frame detector loads here (may raise
        BackendNotInstalled or ConfigError naming the missing package or file)."""
        if not config.enabled:
            return None
        from .wake.factory import build_wake_backend
        from .wake.phrase import PhraseWakeWord

        wake = build_wake_backend(config.backend, config.words, config.sensitivity)
        if isinstance(wake, PhraseWakeWord):
            return wake
        self._wake_detector = wake
        wake.load()
        return wake

    def close(self, timeout: float | None = None, *, flush: bool = True) -> None:
        """Stop listening and release everything. Idempotent; safe after a failed start.

        Args:
            timeout: seconds to wait for finals still being transcribed when ``flush``;
                defaults to ``config.request_timeout_s``. Threads and the engine process
                are then stopped within ``config.close_timeout_s``.
            flush: transcribe the utterance in progress and wait for pending finals.
        """
        with self._state_lock:
            already = self._state in (RecorderState.CLOSING, RecorderState.CLOSED)
            was_running = self._state in (RecorderState.RUNNING, RecorderState.PAUSED)
            if not already:
                self._set_state(RecorderState.CLOSING)
        if already:
            dispatcher = self._dispatcher
            if dispatcher is None or not dispatcher.on_own_thread():
                # Another thread is closing: return once it is done (bounded).
                self._closed.wait(self.config.close_timeout_s * 3)
            return
        self._shutdown(timeout=self.config.request_timeout_s if timeout is None else timeout,
                       flush=flush and was_running)
        if was_running:
            self._emit_direct(RecordingStopped())

    def _shutdown(self, timeout: float, flush: bool) -> None:
        close_timeout = self.config.close_timeout_s
        if self._source is not None:
            try:
                self._source.close()
            except Exception:
                _LOG.exception("closing the audio source failed")
        if flush and self._pipeline_thread is not None and self._fatal is None:
            self._inbox.put_ordered(("flush",))
            self.wait_idle(timeout)
        self._stop.set()
        self._inbox.close()
        if self._pipeline_thread is not None:
            self._pipeline_thread.join(close_timeout)
            if self._pipeline_thread.is_alive():
                _LOG.warning("pipeline thread did not stop within %.1f s", close_timeout)
        if self._engine is not None:
            self._engine.close(close_timeout)
        if self._vad is not None:
            try:
                self._vad.close()
            except Exception:
                _LOG.exception("closing the VAD failed")
        if self._wake_detector is not None:
            try:
                self._wake_detector.close()
            except Exception:
                _LOG.exception("closing the wake word detector failed")
        with self._results_cond:
            self._results_cond.notify_all()
        with self._idle:
            self._idle.notify_all()
        self._set_state(RecorderState.CLOSED)
        if self._dispatcher is not None:
            self._dispatcher.close(close_timeout)
        self._closed.set()

    def pause(self) -> None:
        """Stop taking audio (the utterance in progress is transcribed); the model stays loaded."""
        with self._state_lock:
            self._require_running("pause")
            if self._state is RecorderState.PAUSED:
                return
            self._set_state(RecorderState.PAUSED)
        self._inbox.put_ordered(("pause",))
        self._emit(RecordingStopped())

    def resume(self) -> None:
        """Take audio again after :meth:`pause`."""
        with self._state_lock:
            self._require_running("resume")
            if self._state is RecorderState.RUNNING:
                return
            self._set_state(RecorderState.RUNNING)
        self._inbox.put_ordered(("resume",))
        self._emit(RecordingStarted())

    # ----------------------------------------------------------------- input

    def feed_audio(self, chunk: NDArray[Any] | bytes | bytearray | memoryview,
                   sample_rate: int = SAMPLE_RATE, *, encoding: str | None = None,
                   channels: int = 1) -> None:
        """Push audio (``source="push"`` only). Thread-safe; blocks when the backlog is full.

        Args:
            chunk: int16 or float32 samples (1-D mono/interleaved, or 2-D (frames, channels)),
                or bytes in ``encoding``.
            sample_rate: rate of ``chunk`` in Hz (resampled to 16 kHz).
            encoding: for bytes: "pcm16" (default), "float32", "ulaw" or "alaw".
            channels: channel count of interleaved input (averaged to mono).

        Raises:
            LifecycleError: before start() or after close().
            AudioFormatError: the audio cannot be interpreted (dtype, NaN/inf, rate, ...).
        """
        state = self._state
        if state in (RecorderState.CLOSING, RecorderState.CLOSED):
            raise LifecycleError("feed_audio() after close(); create a new Recorder")
        if state in (RecorderState.CREATED, RecorderState.STARTING) or self._source is None:
            raise LifecycleError("feed_audio() before start(); call start() or use "
                                 "'with Recorder(source=\"push\") as rec:'")
        from .sources.push import PushSource

        if not isinstance(self._source, PushSource):
            raise LifecycleError("feed_audio() needs a push source: Recorder(source=\"push\")")
        self._raise_fatal()
        self._source.feed(chunk, sample_rate, encoding=encoding, channels=channels)

    def start_utterance(self) -> None:
        """Start an utterance now, whatever the VAD says (manual recording)."""
        self._require_running("start_utterance")
        self._inbox.put_ordered(("force_start",))

    def end_utterance(self) -> None:
        """End the utterance in progress now and transcribe it."""
        self._require_running("end_utterance")
        self._inbox.put_ordered(("force_end",))

    def flush(self, timeout: float | None = None) -> None:
        """Transcribe the utterance in progress and wait until every final is delivered.

        Use it at the end of pushed audio (end of a call, end of a file).
        """
        self._require_running("flush")
        self._inbox.put_ordered(("flush",))
        if not self.wait_idle(self.config.request_timeout_s if timeout is None else timeout):
            raise TimeoutError("finals were still pending when flush() timed out")
        self._raise_fatal()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until all audio is processed and no final is pending. True if idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while not self._is_idle():
                if self._stop.is_set() or self._fatal is not None:
                    return self._is_idle()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(0.1 if remaining is None else min(remaining, 0.1))
        return True

    def _is_idle(self) -> bool:
        return self._inbox.unfinished == 0 and not self._requests

    # ----------------------------------------------------------------- output

    def text(self, timeout: float | None = None) -> str:
        """Block until the next final transcript and return its text.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
            EngineError: the utterance could not be transcribed.
            LifecycleError: the recorder is closed and no transcript is left.
        """
        return self.next_final(timeout).text

    def next_final(self, timeout: float | None = None) -> FinalTranscript:
        """Like :meth:`text`, returning the whole :class:`FinalTranscript`."""
        if self._state is RecorderState.CREATED:
            raise LifecycleError("call start() before waiting for text")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._results_cond:
            while not self._results:
                self._raise_fatal()
                if self._state is RecorderState.CLOSED:
                    raise LifecycleError("the recorder is closed and no transcript is left")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no final transcript within {timeout} s")
                # Short waits keep Ctrl+C responsive.
                self._results_cond.wait(0.1 if remaining is None else min(remaining, 0.1))
            item = self._results.popleft()
        if isinstance(item, BaseException):
            raise item
        return item

    def transcripts(self, timeout: float | None = None) -> Iterator[FinalTranscript]:
        """Yield final transcripts until the recorder is closed (or ``timeout`` between two)."""
        while True:
            try:
                yield self.next_final(timeout)
            except LifecycleError:
                return

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener(event)`` for every event from now on (on the dispatch thread)."""
        if self._dispatcher is None:
            raise LifecycleError("subscribe() needs a started recorder")
        self._dispatcher.add(listener)

    # ----------------------------------------------------------------- internals

    def _require_running(self, what: str) -> None:
        if self._state not in (RecorderState.RUNNING, RecorderState.PAUSED):
            raise LifecycleError(f"{what}() needs a running recorder (state: "
                                 f"{self._state.value})")

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    def _set_state(self, state: RecorderState) -> None:
        with self._state_lock:
            if self._state is state:
                return
            self._state = state
        self._emit(StateChanged(state))

    def _emit(self, event: Event) -> None:
        if self._dispatcher is not None:
            self._dispatcher.emit(event)

    def _emit_direct(self, event: Event) -> None:
        """Call callbacks on this thread (after the dispatcher has stopped)."""
        self._call_callbacks(event)

    def _call_callbacks(self, event: Event) -> None:
        if self._on_event is not None:
            self._on_event(event)
        cb = self._callbacks.get(type(event))
        if cb is None:
            return
        if isinstance(event, FinalTranscript):
            cb(event.text)
        elif isinstance(event, PartialTranscript):
            cb(event.stable, event.unstable)
        elif isinstance(event, ErrorEvent):
            cb(event.error)
        elif isinstance(event, WakeWordDetected):
            cb(event.word)
        else:
            cb()

    def _deliver_final(self, item: FinalTranscript | BaseException) -> None:
        with self._results_cond:
            self._results.append(item)
            self._results_cond.notify_all()

    # Engine callbacks: run on the engine's reader thread; hand over to the pipeline thread.
    def _engine_result(self, request: TranscribeRequest, output: EngineOutput,
                       compute_seconds: float, attempts: int) -> None:
        self._inbox.put_control(("result", request, output, compute_seconds, attempts))

    def _engine_failed(self, request: TranscribeRequest, exc: BaseException) -> None:
        self._inbox.put_control(("failed", request, exc))

    def _engine_error(self, exc: BaseException, fatal: bool) -> None:
        self._inbox.put_control(("error", exc, fatal, "engine"))

    def _run_pipeline(self, pipeline: SpeechPipeline) -> None:
        try:
            self._pipeline_loop(pipeline)
        except BaseException as exc:  # never lose an error in a thread
            _LOG.exception("pipeline thread failed")
            self._fail(exc, "pipeline")

    def _fail(self, exc: BaseException, where: str) -> None:
        self._fatal = exc
        self._emit(ErrorEvent(exc, fatal=True, where=where))
        with self._results_cond:
            self._results_cond.notify_all()
        with self._idle:
            self._idle.notify_all()

    def _pipeline_loop(self, pipeline: SpeechPipeline) -> None:
        realtime = getattr(self._source_spec, "realtime", True) \
            if not isinstance(self._source_spec, (str, Path)) \
            else self._source_spec in ("mic", "microphone", "push")
        while not self._stop.is_set():
            hold_back = (not realtime and self._engine is not None
                         and len(self._requests) >= _FILE_MAX_PENDING)
            item = self._inbox.get(0.1, allow_audio=not hold_back)
            if item is None:
                self._notify_idle()
                continue
            try:
                if isinstance(item, np.ndarray):
                    if self._paused:
                        continue
                    outputs = pipeline.feed(item)
                    self._position = pipeline.position
                    self._route(outputs)
                else:
                    self._handle_control(item, pipeline)
            finally:
                self._inbox.task_done()
            if self._inbox.unfinished == 0:
                self._notify_idle()

    def _notify_idle(self) -> None:
        with self._idle:
            self._idle.notify_all()

    def _handle_control(self, item: tuple[Any, ...], pipeline: SpeechPipeline) -> None:
        kind = item[0]
        if kind == "result":
            _, request, output, compute_seconds, attempts = item
            if self._requests.pop(request.request_id, None) is None:
                return  # cancelled
            self._route(pipeline.on_result(request, output, compute_seconds, attempts))
        elif kind == "failed":
            _, request, exc = item
            if self._requests.pop(request.request_id, None) is None:
                return
            self._route(pipeline.on_failed(request, exc))
        elif kind == "error":
            _, exc, fatal, where = item
            if fatal:
                self._fail(exc, where)
            else:
                self._emit(ErrorEvent(exc, fatal=False, where=where))
        elif kind == "pause":
            self._paused = True
            self._route(pipeline.flush())
        elif kind == "resume":
            self._paused = False
        elif kind in ("flush", "end"):
            self._route(pipeline.flush())
            self._position = pipeline.position
            if kind == "end":
                self._ended = True
        elif kind == "force_start":
            self._route(pipeline.force_start())
        elif kind == "force_end":
            self._route(pipeline.force_end())

    def _route(self, outputs: list[Output]) -> None:
        engine = self._engine
        assert engine is not None  # started before the pipeline thread
        for out in outputs:
            if isinstance(out, TranscribeRequest):
                if out.kind == "partial":
                    # The engine replaces a queued partial by a newer one without answering
                    # it: stop waiting for older partials.
                    for stale in [i for i, r in self._requests.items() if r.kind == "partial"]:
                        del self._requests[stale]
                self._requests[out.request_id] = out
                engine.submit(out)
            elif isinstance(out, CancelRequest):
                if self._requests.pop(out.request_id, None) is not None:
                    engine.cancel(out.request_id)
            elif isinstance(out, FinalFailed):
                _LOG.error("utterance %d could not be transcribed: %s",
                           out.request.utterance_id, out.error)
                self._deliver_final(out.error)
                self._emit(ErrorEvent(out.error, fatal=False, where="engine"))
            else:
                if isinstance(out, FinalTranscript):
                    self.finals += 1
                    self._deliver_final(out)
                self._emit(out)

    @property
    def ended(self) -> bool:
        """True when a finite source (a file) has delivered all its audio."""
        return self._ended


def transcribe_file(path: str | Path, *, on_final: Callback | None = None,
                    on_progress: Callable[[float], None] | None = None,
                    config: RecorderConfig | None = None,
                    **settings: Any) -> list[FinalTranscript]:
    """Transcribe an audio file through the streaming pipeline; return its finals in order.

    The file is read as fast as the engine allows (not in real time). ``on_progress`` is
    called with the seconds of audio processed so far, about ten times a second.
    ``settings`` are the keyword shortcuts :class:`Recorder` takes. Finals take
    faster-whisper's own 30 s pass (engine option ``fast_finals=False`` unless given): nobody
    waits on a file's finals, so the standard pass is worth its cost.

    Raises:
        EngineError: an utterance could not be transcribed.
    """
    from .sources.file import FileSource

    finals: list[FinalTranscript] = []
    settings.setdefault("partials", False)  # nobody watches partials of a file
    options = {**(config.engine.options if config is not None else {}),
               **(settings.get("options") or {})}
    options.setdefault("fast_finals", False)
    settings["options"] = options
    with Recorder(config, source=FileSource(str(path)), on_final=on_final, **settings) as rec:
        while True:
            done = rec.ended and rec.wait_idle(0.1)
            while True:  # take finals as they come, so an error surfaces at once
                try:
                    finals.append(rec.next_final(timeout=0))
                except TimeoutError:
                    break
            if done:
                break
            if on_progress is not None:
                on_progress(rec.position)
            time.sleep(0.05)
    finals.sort(key=lambda f: (f.start, f.utterance_id))
    return finals
