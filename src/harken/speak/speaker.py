"""Speaker: text (or a stream of text pieces) in, streamed speech out, stoppable at once.

``speak()`` cuts text into sentences and clauses (:mod:`harken.speak.cutter`) and sends each
to the speech engine program (:class:`~harken.speak.host.SpeechEngineHost`, its own or a
shared one) as soon as it is complete, a few ahead of what is playing. The audio is
resampled to the sink's rate and delivered in chunks of ``chunk_ms``, paced in real time
(at most ``lead_ms`` ahead of the clock) unless the sink is a file. ``stop()`` drops queued
and in-flight audio and returns what was delivered.

Threads, owned here and joined by ``close()``:

- "harken-speak-out" submits sentences, resamples, paces and writes to the sink, and calls
  ``on_error``; sink callbacks run on it;
- "harken-speak-text" consumes iterables (and async iterables, on its own event loop) of
  text pieces given to ``speak()``.

The bookkeeping of sentences and requests is :class:`~harken.speak.speech_queue.SpeechQueue`;
this module is the shell around it, kept in one piece because its lifecycle, pacing clock
and both threads share one lock and one state.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._threads import join_thread
from ..audio.resample import StreamResampler
from ..errors import ConfigError, LifecycleError
from ..events import ErrorEvent
from .host import SpeechEngineHost
from .report import SpeechHandle, SpeechReport
from .sinks import Chunk, IteratorSink, Sink, WavSink, make_sink
from .speech_queue import Action, SpeechQueue
from .utterance import Unit, Utterance

__all__ = ["SAMPLE_FORMATS", "SAMPLE_RATES", "Speaker"]

logger = logging.getLogger(__name__)

SAMPLE_RATES = (8000, 16000, 22050, 24000, 48000)
"""The output rates a speaker offers, in Hz."""
SAMPLE_FORMATS = ("int16", "float32")
"""The output sample formats."""

TextInput = str | Iterable[str] | AsyncIterable[str]


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not low <= value <= high:
        raise ConfigError(f"{name} must be a number from {low} to {high}, got {value!r}")
    return float(value)


class Speaker:
    """Speaks text into a sink (see the module docstring).

    Args:
        voice: the voice (None: the engine's default); see :mod:`harken.speak.voices`.
        engine: "piper", "espeak", "tone", "package.module:Class", or None for the best
            installed engine.
        options: engine options. ``voice``, ``engine`` and ``options`` make the speaker's own
            engine program; give ``host=`` instead to share a started one.
        host: a started :class:`SpeechEngineHost` shared with other speakers (its owner
            closes it).
        sample_rate: the output rate in Hz, one of :data:`SAMPLE_RATES`; None: the voice's.
        sample_format: "float32" (in [-1, 1]) or "int16".
        on_audio: ``on_audio(chunk)`` for each chunk (a 1-D array), on the delivery thread.
        sink: "device" (or a device index) for the sound card, a path ending in ".wav",
            "iterator" (the default without ``on_audio``: read :meth:`chunks`), or a
            :class:`~harken.speak.sinks.Sink`.
        on_error: ``on_error(ErrorEvent)`` for errors (engine, sink, text iterator).
        chunk_ms: the length of one chunk, 10 to 100 ms.
        speed: speaking rate, 0.25 to 4.0 (1.0 normal).
        realtime: pace delivery at the audio's own speed (default: True, except for a WAV
            file, which is written as fast as it is synthesised).
        lead_ms: how far ahead of real time paced delivery may run, in milliseconds.
        lookahead: sentences synthesised ahead of the one playing.
        start_timeout_s: seconds the engine program may take to load the voice.

    Raises:
        ConfigError: a bad option, an unknown engine or voice (listing installed voices).
        BackendNotInstalled: the engine is not installed.
    """

    def __init__(self, voice: str | None = None, *, engine: str | None = None,
                 options: Mapping[str, Any] | None = None,
                 host: SpeechEngineHost | None = None, sample_rate: int | None = None,
                 sample_format: str = "float32",
                 on_audio: Callable[[Chunk], object] | None = None, sink: object = None,
                 on_error: Callable[[ErrorEvent], object] | None = None, chunk_ms: int = 20,
                 speed: float = 1.0, realtime: bool | None = None, lead_ms: int = 60,
                 lookahead: int = 2, start_timeout_s: float = 120.0) -> None:
        if host is not None:
            if not isinstance(host, SpeechEngineHost):
                raise ConfigError(f"host must be a SpeechEngineHost, got {type(host).__name__}")
            if voice is not None or engine is not None or options is not None:
                raise ConfigError("give either host= or voice/engine/options, not both: the "
                                  "host's voice is used")
            self._host_config: SpeechEngineHost | None = None
        else:
            self._host_config = SpeechEngineHost(voice, engine=engine, options=options,
                                                 start_timeout_s=start_timeout_s)
        if sample_rate is not None and sample_rate not in SAMPLE_RATES:
            raise ConfigError(f"sample_rate must be one of {SAMPLE_RATES} Hz or None, "
                              f"got {sample_rate!r}")
        if sample_format not in SAMPLE_FORMATS:
            raise ConfigError(f"sample_format must be one of {SAMPLE_FORMATS}, "
                              f"got {sample_format!r}")
        if on_error is not None and not callable(on_error):
            raise ConfigError("on_error must be callable")
        for name, value in (("chunk_ms", chunk_ms), ("lead_ms", lead_ms),
                            ("lookahead", lookahead)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be an int, got {value!r}")
        _number("chunk_ms", chunk_ms, 10, 100)
        _number("lead_ms", lead_ms, 0, 2000)
        _number("lookahead", lookahead, 0, 16)
        self._speed = _number("speed", speed, 0.25, 4.0)
        self._sink: Sink = make_sink(sink, on_audio)
        self._realtime = (not isinstance(self._sink, WavSink)) if realtime is None \
            else bool(realtime)
        self._shared_host = host
        self._sample_rate = sample_rate
        self._sample_format = sample_format
        self._on_error = on_error
        self._chunk_ms = chunk_ms
        self._lead_s = lead_ms / 1000
        self._host: SpeechEngineHost | None = None
        self._cond = threading.Condition(threading.RLock())
        self._speech = SpeechQueue(self._cond, lookahead, self._speed)
        self._state = "created"
        self._native = 0
        self._out_rate = 0
        self._jobs: collections.deque[tuple[Utterance, Any]] = collections.deque()
        self._delivering = False
        self._clock = 0.0
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle

    @property
    def sample_rate(self) -> int:
        """The output rate in Hz (known after ``start()`` when not given)."""
        if self._out_rate:
            return self._out_rate
        if self._sample_rate is None:
            raise LifecycleError("the voice's sample rate is known once the speaker started")
        return self._sample_rate

    @property
    def host(self) -> SpeechEngineHost | None:
        """The engine host in use (None before ``start()``)."""
        return self._host

    def __enter__(self) -> Speaker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> Speaker:
        """Start the engine program (unless shared), open the sink, start the threads.

        Returns:
            self.

        Raises:
            LifecycleError: started twice, or a shared host that is not running.
            WorkerError: the engine program failed to start or load the voice.
            AudioSourceError: the sound card cannot play at the rate.
        """
        with self._cond:
            if self._state != "created":
                raise LifecycleError(f"Speaker.start() called while {self._state}; a speaker "
                                     "starts once")
            self._state = "starting"
        try:
            if self._shared_host is not None:
                if not self._shared_host.running:
                    raise LifecycleError("the shared SpeechEngineHost is not running: start() "
                                         "it before the speakers that use it")
                self._host = self._shared_host
            else:
                assert self._host_config is not None
                self._host = self._host_config.start()
            self._native = self._host.sample_rate
            self._speech.host, self._speech.native_rate = self._host, self._native
            self._out_rate = self._sample_rate or self._native
            self._sink.open(self._out_rate, self._sample_format)
        except BaseException:
            with self._cond:
                self._state = "failed"
            self._close_host()
            raise
        with self._cond:
            self._state = "running"
            for name, target in (("harken-speak-out", self._out_loop),
                                 ("harken-speak-text", self._text_loop)):
                thread = threading.Thread(target=target, name=name, daemon=True)
                self._threads.append(thread)
                thread.start()
        return self

    def close(self, timeout: float = 2.0) -> None:
        """Stop speaking, end the threads, close the sink and the own engine program.

        Idempotent, bounded by about ``timeout`` seconds, safe after a failed ``start()``.
        """
        with self._cond:
            if self._state in ("closed", "closing"):
                return
            was_running = self._state == "running"
            self._state = "closing"
        deadline = time.monotonic() + timeout
        if was_running:
            self.stop()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            join_thread(thread, deadline - time.monotonic() - 0.5, logger,
                        "a text iterator that never yields?")
        try:
            self._sink.close()
        except Exception as exc:
            logger.warning("closing the sink failed: %s", exc)
        self._close_host(max(0.5, deadline - time.monotonic()))
        with self._cond:
            self._state = "closed"

    def _close_host(self, timeout: float = 2.0) -> None:
        if self._host_config is not None:
            self._host_config.close(timeout)

    # ------------------------------------------------------------------ speaking

    def speak(self, text: TextInput) -> SpeechHandle:
        """Speak text, or a stream of text pieces; return at once with a handle.

        Args:
            text: a str, or an iterable / async iterable of str pieces (e.g. an LLM's
                tokens). Each sentence is synthesised as soon as it is complete. Later
                ``speak()`` calls are spoken after earlier ones.

        Raises:
            LifecycleError: not running.
            WorkerError: the engine program failed for good.
            TypeError: ``text`` is not a str or an (async) iterable.
        """
        if not isinstance(text, (str, Iterable, AsyncIterable)):
            raise TypeError(f"speak() needs a str or an iterable of str, got "
                            f"{type(text).__name__}")
        with self._cond:
            utterance = self._open_utterance()
            if isinstance(text, str):
                self._speech.add_text(utterance, text, last=True)
            else:
                self._jobs.append((utterance, text))
                self._cond.notify_all()
        return utterance.handle

    def _open_utterance(self) -> Utterance:
        with self._cond:
            if self._state != "running":
                raise LifecycleError(f"the speaker is {self._state}; call start() first")
            return self._speech.open()

    def say(self, text: TextInput, timeout: float | None = None) -> SpeechReport:
        """Speak and wait until it was delivered; return the report (see ``speak()``)."""
        return self.speak(text).wait(timeout)

    def stop(self) -> SpeechReport:
        """Drop queued and in-flight speech at once; return what was delivered.

        When it returns, no more audio of the dropped speech reaches the sink. Every
        unfinished handle ends, ``interrupted``.

        Returns:
            The report of the speech that was playing (or the first one waiting); an empty
            report when nothing was.
        """
        with self._cond:
            stopped = self._speech.clear()
            self._jobs.clear()
            self._sink.interrupt()
            if threading.current_thread() not in self._threads[:1]:  # not from a callback
                self._cond.wait_for(lambda: not self._delivering, timeout=1.0)
            for utterance in stopped:
                utterance.finish(self._native)
        return stopped[0].handle.report if stopped else SpeechReport(())

    def chunks(self, timeout: float | None = None) -> Iterable[Chunk]:
        """Iterate the audio chunks (when the sink is the iterator) until ``close()``.

        Raises:
            ConfigError: the speaker has another sink.
            TimeoutError: no chunk came for ``timeout`` seconds.
        """
        if not isinstance(self._sink, IteratorSink):
            raise ConfigError("chunks() needs sink='iterator' (the default without on_audio)")
        return self._sink.chunks(timeout)

    # ------------------------------------------------------------------ delivery thread

    def _next_action(self) -> Action | None:
        """Wait for something to deliver; None when errors are waiting to be reported."""
        chunk = max(1, self._native * self._chunk_ms // 1000)
        with self._cond:
            while self._state in ("running", "starting"):
                action = self._speech.next_action(chunk)
                if action is not None or self._speech.errors:
                    return action
                self._cond.wait(0.5)
            raise _Closing

    def _out_loop(self) -> None:
        resampler: StreamResampler | None = None
        epoch = -1
        while True:
            try:
                action = self._next_action()
            except _Closing:
                return
            if action is None:
                self._report_errors()
                continue
            unit, piece, piece_epoch = action
            if resampler is None or piece_epoch != epoch:
                resampler, epoch = StreamResampler(self._native, self._out_rate), piece_epoch
            out = resampler.flush() if piece is None else resampler.process(piece)
            # The resampler's delay can bunch samples; keep chunks at most chunk_ms long.
            step = max(1, self._out_rate * self._chunk_ms // 1000)
            for start in range(0, max(out.size, 1), step):
                self._deliver(unit, out[start:start + step], piece_epoch, last=piece is None)

    def _deliver(self, unit: Unit, audio: NDArray[np.float32], epoch: int,
                 last: bool) -> None:
        """Pace, then write one chunk; count it in engine-rate samples as the listener
        gets it (so what the resampler still holds is not counted as delivered).
        """
        duration = audio.size / self._out_rate
        with self._cond:
            if self._realtime:
                now = time.monotonic()
                self._clock = max(self._clock, now)
                self._cond.wait_for(lambda: self._speech.epoch != epoch
                                    or self._state != "running",
                                    timeout=max(0.0, self._clock - self._lead_s - now))
            if self._speech.epoch != epoch or self._state != "running":
                return
            self._delivering = True
        error: BaseException | None = None
        try:
            if audio.size:
                self._sink.write(self._convert(audio))
        except Exception as exc:
            error = exc
        with self._cond:
            self._delivering = False
            unit.delivered += round(duration * self._native)
            if last and unit.total is not None:  # the sentence's end: whole, not rounded
                unit.delivered = unit.total
            self._clock += duration
            if error is not None:
                logger.warning("the sink raised: %s", error)
                self._speech.fail(unit.utterance, error, "sink")
            self._cond.notify_all()
        if error is not None:
            self._report_errors()

    def _convert(self, audio: NDArray[np.float32]) -> Chunk:
        if self._sample_format == "int16":
            pcm: NDArray[np.int16] = np.clip(np.rint(audio * 32768.0), -32768,
                                             32767).astype(np.int16)
            return pcm
        clipped: NDArray[np.float32] = np.clip(audio, -1.0, 1.0)
        return clipped

    def _report_errors(self) -> None:
        while True:
            with self._cond:
                if not self._speech.errors:
                    return
                event = self._speech.errors.popleft()
            logger.warning("speech failed (%s): %s", event.where, event.error)
            if self._on_error is not None:
                try:
                    self._on_error(event)
                except Exception:
                    logger.exception("the on_error callback raised")

    # ------------------------------------------------------------------ text thread

    def _text_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._jobs) or self._state not in (
                    "running", "starting"))
                if self._state not in ("running", "starting"):
                    return
                utterance, source = self._jobs.popleft()
            try:
                if isinstance(source, AsyncIterable):
                    asyncio.run(self._consume_async(utterance, source))
                else:
                    self._consume(utterance, source)
            except Exception as exc:
                self._fail_text(utterance, exc)

    def _fail_text(self, utterance: Utterance, error: BaseException) -> None:
        """The text source of an utterance raised: end it with the error."""
        self._speech.fail(utterance, error, "text")

    def _feed(self, utterance: Utterance, piece: str | None) -> bool:
        """Add a piece (None: the end); return False once the utterance was stopped."""
        with self._cond:
            if self._state != "running":
                return False
            return self._speech.add_text(utterance, piece or "", last=piece is None)

    def _consume(self, utterance: Utterance, source: Iterable[str]) -> None:
        iterator = iter(source)
        try:
            for piece in iterator:
                if not self._feed(utterance, piece):
                    return
            self._feed(utterance, None)
        finally:
            close = getattr(iterator, "close", None)
            if callable(close):
                close()

    async def _consume_async(self, utterance: Utterance, source: AsyncIterable[str]) -> None:
        async for piece in source:
            if not self._feed(utterance, piece):
                return
        self._feed(utterance, None)


class _Closing(Exception):
    """The delivery thread's signal to end."""
