"""The Recorder: a source, the pure pipeline, the engine process and callbacks, in one facade.

Threads (all named "harken-*", all owned and joined by :meth:`Recorder.close`):

- the source's own thread(s) write audio into the inbox (bounded; backpressure blocks them);
- "harken-pipeline" runs VAD and segmentation and sends requests to the engine process,
  never waiting for it (:class:`~harken.recorder.loop.PipelineLoop`);
- the engine process's reader/writer threads post results back into the inbox;
- "harken-dispatch" calls user callbacks, one at a time, in event order.

Nothing is started before :meth:`Recorder.start`; the constructor only stores and validates.
This module owns the lifecycle and the public methods; the parts live next to it in this
package: callbacks in ``callbacks``, the callback thread in ``dispatch``, building the source,
VAD and wake backend in ``wiring``, the pipeline thread's work in ``loop``, its queue in
``inbox`` and the finals queue in ``finals``. Keyword shortcuts are
:meth:`RecorderConfig.with_settings <harken.config.RecorderConfig.with_settings>`.

It is one piece (over the ~400-line guide) because it is the public face: every public
method, its docstring and the state machine they share; the working parts are already
modules of their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from numpy.typing import NDArray

from .._threads import join_thread
from ..config import SAMPLE_RATE, RecorderConfig
from ..errors import ConfigError, LifecycleError
from ..events import (
    ErrorEvent,
    Event,
    FinalTranscript,
    RecorderState,
    RecordingStarted,
    RecordingStopped,
    StateChanged,
)
from ..sources.base import AudioSource
from ..vad.base import VoiceActivityDetector
from ..wake.base import WakeWordDetector
from .callbacks import Callback, CallbackTable
from .dispatch import Dispatcher
from .finals import FinalQueue
from .inbox import Inbox
from .loop import PipelineLoop
from .wiring import (
    SOURCE_NAMES,
    InboxSink,
    build_wake,
    is_realtime,
    load_turn,
    load_vad,
    make_source,
)

if TYPE_CHECKING:
    from ..worker.process import EngineProcess

__all__ = ["Recorder"]

_LOG = logging.getLogger(__name__)


class Recorder:
    """Real-time speech-to-text from a microphone, a file or pushed audio.

    Construction stores and validates settings only; :meth:`start` (or ``with``) loads the
    model in the engine process, opens the source and starts the threads; :meth:`close`
    stops everything within a bounded time.

    Args:
        config: full settings; keyword ``settings`` override single fields of it, e.g.
            ``model="tiny.en"``, ``language="en"``, ``beam_size=1``,
            ``post_speech_silence_ms=400``, ``vad="silero"``, ``engine="scripted"`` (see
            :meth:`RecorderConfig.with_settings <harken.config.RecorderConfig.with_settings>`).
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
        on_pause_start: ``on_pause_start()`` when silence begins inside an utterance (the
            end of the turn is awaited); setting it or ``on_pause_end`` turns on
            ``pause_events``.
        on_pause_end: ``on_pause_end()`` when that pause is over (speech resumed, or the
            utterance ended).
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
        on_pause_start: Callback | None = None,
        on_pause_end: Callback | None = None,
        on_event: Callback | None = None,
        vad_detector: VoiceActivityDetector | None = None,
        **settings: Any,
    ) -> None:
        if on_pause_start is not None or on_pause_end is not None:
            settings.setdefault("pause_events", True)
        self.config = (config or RecorderConfig()).with_settings(**settings)
        self._callbacks = CallbackTable(on_event, {
            "on_final": on_final, "on_partial": on_partial,
            "on_speech_start": on_speech_start, "on_speech_end": on_speech_end,
            "on_transcription_start": on_transcription_start,
            "on_recording_start": on_recording_start, "on_recording_stop": on_recording_stop,
            "on_error": on_error, "on_wake_word": on_wake_word,
            "on_wake_word_timeout": on_wake_word_timeout,
            "on_wake_word_waiting": on_wake_word_waiting,
            "on_pause_start": on_pause_start, "on_pause_end": on_pause_end,
        })
        if isinstance(source, str) and source not in SOURCE_NAMES \
                and not Path(source).exists():
            raise ConfigError(f"source must be 'mic', 'push' or an existing file; "
                              f"no file at {source!r}")
        self._source_spec = source
        self._input_device = input_device
        self._vad_detector = vad_detector
        self._state = RecorderState.CREATED
        self._state_lock = threading.RLock()
        self._source: AudioSource | None = None
        self._vad: VoiceActivityDetector | None = None
        self._wake_detector: WakeWordDetector | None = None
        self._engine: EngineProcess | None = None
        self._dispatcher: Dispatcher | None = None
        self._pipeline_thread: threading.Thread | None = None
        self._inbox = Inbox(int(self.config.max_backlog_s * SAMPLE_RATE))
        self._finals = FinalQueue()
        self._fatal: BaseException | None = None
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._idle = threading.Condition()
        self._loop = PipelineLoop(self._inbox, stop=self._stop, idle=self._idle,
                                  emit=self._emit, deliver_final=self._finals.put,
                                  fail=self._fail)

    # ----------------------------------------------------------------- lifecycle

    @property
    def state(self) -> RecorderState:
        """The lifecycle state."""
        return self._state

    @property
    def position(self) -> float:
        """Seconds of audio processed by the pipeline so far."""
        return self._loop.position / SAMPLE_RATE

    @property
    def finals(self) -> int:
        """Final transcripts delivered so far."""
        return self._loop.finals

    @property
    def ended(self) -> bool:
        """True when a finite source (a file) has delivered all its audio."""
        return self._loop.ended

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
        from ..worker.process import EngineProcess

        source = make_source(self._source_spec, self._input_device)
        vad = load_vad(self.config.vad, self._vad_detector)
        self._vad = vad
        turn = load_turn(self.config.vad)
        wake, self._wake_detector = build_wake(self.config.wake)
        if self._wake_detector is not None:
            self._wake_detector.load()
        listeners: list[Callable[[Event], None]] = [self._callbacks]
        self._dispatcher = Dispatcher(listeners)
        self._dispatcher.start()
        self._engine = EngineProcess(
            self.config.engine,
            on_result=self._loop.post_result,
            on_failed=self._loop.post_failed,
            on_error=self._loop.post_error,
            start_timeout_s=self.config.start_timeout_s,
            request_timeout_s=self.config.request_timeout_s,
            max_attempts=self.config.max_attempts,
        )
        engine = self._engine
        engine.start()
        from ..core.pipeline import SpeechPipeline

        pipeline = SpeechPipeline(vad, self.config.vad, self.config.realtime, wake=wake, turn=turn,
                                  wake_config=self.config.wake)
        self._pipeline_thread = threading.Thread(
            target=self._loop.run, args=(pipeline, engine, is_realtime(self._source_spec)),
            name="harken-pipeline", daemon=True)
        self._pipeline_thread.start()
        self._source = source
        source.start(InboxSink(self._inbox))

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
        join_thread(self._pipeline_thread, close_timeout, _LOG)
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
        self._finals.wake()
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
        from ..sources.push import PushSource

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

    def wake_up(self) -> None:
        """Listen for a command as if the wake word had just been heard: speech starting
        within ``wake_timeout_s`` is transcribed (nothing is recorded on silence). Without
        wake words it changes nothing.
        """
        self._require_running("wake_up")
        self._inbox.put_ordered(("wake_up",))

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

    def wait_delivered(self, timeout: float | None = None) -> bool:
        """Wait until every event so far has reached the callbacks; True if so.

        :meth:`wait_idle` then this: everything the audio fed so far caused has been
        delivered (callbacks run on their own thread, so they may still lag ``wait_idle``).
        """
        dispatcher = self._dispatcher
        return True if dispatcher is None else dispatcher.wait_delivered(timeout)

    def _is_idle(self) -> bool:
        return self._inbox.unfinished == 0 and not self._loop.requests

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
        return self._finals.get(timeout, self._check_can_wait)

    def _check_can_wait(self) -> None:
        """Raise what ends a wait for finals: a fatal error, or a closed recorder."""
        self._raise_fatal()
        if self._state is RecorderState.CLOSED:
            raise LifecycleError("the recorder is closed and no transcript is left")

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
        self._callbacks(event)

    def _fail(self, exc: BaseException, where: str) -> None:
        self._fatal = exc
        self._emit(ErrorEvent(exc, fatal=True, where=where))
        self._finals.wake()
        with self._idle:
            self._idle.notify_all()
