"""RealtimeSTT's two sockets on the harken server: a data socket's stream, a control socket.

:class:`DataSocket` is one data WebSocket: it parses frames (:mod:`.protocol`), resamples
them to 16 kHz, keeps the last utterance's audio (RealtimeSTT sends it back) and turns its
:class:`~harken.server.session.StreamSession`'s events into RealtimeSTT's messages.
:class:`ControlSocket` is how the server's registry sees a control socket (the commands are
run by :class:`~harken.server.rtstt.hub.RtsttHub`).

Thread: everything runs on the server's asyncio event loop (the aiohttp handler task of each
socket plus one sender task per data socket).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import time
from collections import deque
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...audio.convert import float32_to_pcm16, to_float32_mono
from ...audio.resample import StreamResampler
from ...config import SAMPLE_RATE, VadConfig, WakeConfig
from ...errors import AudioFormatError, ProtocolError
from ...events import (
    ErrorEvent,
    Event,
    FinalTranscript,
    PartialTranscript,
    PauseEnded,
    PauseStarted,
    SpeechEnded,
    SpeechStarted,
    WakeWordDetected,
    WakeWordWaiting,
)
from ...wake.base import PhraseMatcher, WakeWordDetector
from ..connection_base import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    AudioPace,
    WsConnection,
    is_size_error,
    oversize,
)
from ..context import ServerContext
from ..engine_host import ServerBusy
from ..session import StreamSession
from .protocol import ClientSettings, parse_frame, silence_ms, tidy_text

RATE_CHANGE_GAP_S = 1.0
"""Seconds that must pass between two changes of a data socket's sample rate (each change
rebuilds its resampler: a client flipping rates every frame would burn the loop's CPU)."""

__all__ = ["ControlSocket", "DataSocket"]

logger = logging.getLogger(__name__)


class _Recent:
    """The last samples of a 16 kHz stream, addressable by absolute sample index."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """Samples held at most (older chunks are dropped whole)."""
        self._chunks: deque[NDArray[np.float32]] = deque()
        self._held = 0
        self.total = 0
        """Samples added since the stream began."""

    def add(self, samples: NDArray[np.float32]) -> None:
        if not len(samples):
            return
        self._chunks.append(samples)
        self._held += len(samples)
        self.total += len(samples)
        while self._chunks and self._held - len(self._chunks[0]) >= self.limit:
            self._held -= len(self._chunks.popleft())

    def take(self, start: int, end: int) -> NDArray[np.float32]:
        """Samples ``[start, end)`` (the part still held)."""
        first = self.total - self._held
        if not self._chunks or end <= first:
            return np.zeros(0, dtype=np.float32)
        held = np.concatenate(list(self._chunks))
        return held[max(start - first, 0):max(end - first, 0)]


class DataSocket(WsConnection):
    """One data WebSocket: its stream session and its state (RealtimeSTT's recorder)."""

    label = "RealtimeSTT client"
    protocol = "rtstt"
    shutdown_code = "shutdown"

    def __init__(self, server: ServerContext, settings: ClientSettings, ws: Any, request: Any,
                 name: str) -> None:
        super().__init__(server, ws, request, name)
        self._settings = settings
        """The client's settings, shared with its control socket (which changes them)."""
        self._session: StreamSession | None = None
        self._key: tuple[object, ...] | None = None
        self._resampler: StreamResampler | None = None
        vad = server.config.vad
        self._recent = _Recent(int((vad.max_utterance_s + vad.pre_roll_ms / 1000 + 2.0)
                                   * SAMPLE_RATE))
        self._pace = AudioPace(server.config.max_audio_rate, server.config.audio_burst_s)
        """Counts from the first stream's start."""
        self._audio_seconds = 0.0
        self._rate_changed_at = 0.0
        self.recording = False
        """True while an utterance is open (RealtimeSTT's ``is_recording``)."""
        self.listen_start = 0.0
        """Wall-clock time (time.time()) the stream last started listening for speech."""
        self.recording_stop_time = 0.0
        """Wall-clock time (time.time()) the last utterance ended."""
        self.last_audio: NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        """The last utterance's 16 kHz audio."""
        self._state = ""
        """RealtimeSTT's recorder state for this stream (see :meth:`_enter`); "": none yet."""
        self._end_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ outgoing

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; a full queue means the client stopped reading: drop it."""
        self.put(json.dumps(message))

    def send_error(self, code: str, message: str) -> None:
        """Queue an error message (RealtimeSTT has none; harken's own shape)."""
        self.send({"type": "error", "message": message, "code": code})
    # ------------------------------------------------------------ events

    def _on_event(self, event: Event) -> None:
        stats = self._server.stats
        if isinstance(event, SpeechStarted):
            self.recording = True
            self._enter("recording")
            self.send({"type": "recording_start"})
        elif isinstance(event, PartialTranscript):
            text = tidy_text(event.text)
            if text:
                stats.partials_sent += 1
                self.send({"type": "realtime", "text": text})
        elif isinstance(event, SpeechEnded):
            self.recording = False
            self.recording_stop_time = time.time()
            self.send({"type": "recording_stop"})
            if event.discarded:
                self._enter("listening")
            else:
                self._enter("transcribing")
                self.last_audio = self._recent.take(round(event.start * SAMPLE_RATE),
                                                    round(event.end * SAMPLE_RATE))
                self.send({"type": "transcription_start", "audio_bytes_base64":
                           base64.b64encode(float32_to_pcm16(self.last_audio)).decode("ascii")})
        elif isinstance(event, FinalTranscript):
            stats.finals_sent += 1
            self.activity.final(tidy_text(event.text), event.end, time.monotonic())
            self.send({"type": "fullSentence", "text": tidy_text(event.text)})
            if self._state == "transcribing":  # not a piece of a recording still going on
                self._enter("listening")
        elif isinstance(event, WakeWordWaiting):
            self._enter("wakeword")
        elif isinstance(event, WakeWordDetected):
            self.send({"type": "wakeword_detected"})
            self._enter("listening")
        elif isinstance(event, PauseStarted):
            self.send({"type": "start_turn_detection"})
        elif isinstance(event, PauseEnded):
            self.send({"type": "stop_turn_detection"})
        elif isinstance(event, ErrorEvent):
            self.send({"type": "error", "message": str(event.error), "code": "engine"})
            if event.fatal:
                self.close_soon(CLOSE_INTERNAL)

    def _enter(self, state: str) -> None:
        """Move to RealtimeSTT's recorder ``state`` ("listening", "wakeword", "recording" or
        "transcribing") and send the messages its state change sends: leaving "listening"
        ``vad_detect_stop``, leaving "wakeword" ``wakeword_detection_end``, entering them
        ``vad_detect_start`` / ``wakeword_detection_start``.
        """
        old, self._state = self._state, state
        if old == state:
            return
        if old == "listening":
            self.send({"type": "vad_detect_stop"})
        elif old == "wakeword":
            self.send({"type": "wakeword_detection_end"})
        if state == "listening":
            self.listen_start = time.time()
            self.send({"type": "vad_detect_start"})
        elif state == "wakeword":
            self.send({"type": "wakeword_detection_start"})

    # ------------------------------------------------------------ stream

    def _begin(self, rate: int) -> None:
        """Start a new stream (a new session) with the client's current settings.

        Raises:
            ServerBusy: the host has no room for the session.
        """
        old, self._session = self._session, None
        if old is not None:
            old.close()
        settings = self._settings
        vad_config: VadConfig = self._server.config.vad
        vad_config = dataclasses.replace(  # stt-server reports pauses (turn detection)
            vad_config, pause_events=True,
            post_speech_silence_ms=silence_ms(settings.post_speech_silence_duration))
        wake, wake_config = self._wake()
        session = StreamSession(self._server.engine, self.name, self._on_event,
                                vad_config=vad_config)
        try:
            session.open()
        except BaseException:
            if isinstance(wake, WakeWordDetector):
                wake.close()
            raise
        self._session = session
        session.begin(self._server.vads.create(), self._server.config.realtime,
                      sample_rate=SAMPLE_RATE, language=settings.language,
                      turn=self._server.vads.turn(vad_config), wake=wake,
                      wake_config=wake_config)
        self.activity.new_stream()
        self._key = settings.stream_key()
        self._resampler = StreamResampler(rate)
        self._recent = _Recent(self._recent.limit)
        self.recording = False
        self._enter("listening")

    def _wake(self) -> tuple[WakeWordDetector | PhraseMatcher | None, WakeConfig | None]:
        """This stream's wake word backend (loaded) and settings, or (None, None)."""
        config = self._server.config.rtstt_wake
        if not config.enabled or not self._settings.use_wake_words:
            return None, None
        from ...wake.factory import build_wake_backend

        wake = build_wake_backend(config.backend, config.words, config.sensitivity)
        if isinstance(wake, WakeWordDetector):
            wake.load()  # Porcupine: a few ms; the server checked the backend at start
        return wake, dataclasses.replace(
            config, activation_delay_s=self._settings.wake_word_activation_delay)

    def wake_up(self) -> None:
        """RealtimeSTT's ``wakeup()``: listen for a command as if the wake word was heard."""
        if self._session is not None:
            self._session.wake_up()
            if self._state == "wakeword":
                self._enter("listening")

    def _idle(self) -> bool:
        session = self._session
        return session is None or (not self.recording and session.outstanding == 0)

    def finish_utterance(self) -> None:
        """RealtimeSTT's ``stop()``: end the open utterance now and transcribe it."""
        if self._session is not None and self._session.started and self.recording:
            self._session.flush()

    def abort_utterance(self) -> None:
        """RealtimeSTT's ``abort()``: drop the open utterance and what waits for the engine."""
        if self._session is None or self._resampler is None or self._idle():
            return
        if self.recording:
            self.send({"type": "recording_stop"})
        self._begin(self._resampler.in_rate)

    async def on_binary(self, data: bytes) -> None:
        """Handle one binary frame (errors close this socket)."""
        config = self._server.config
        too_large = oversize("audio frame", len(data), config.max_audio_frame_bytes)
        if too_large is not None:
            await self.fail("too_large", too_large, CLOSE_TOO_BIG)
            return
        try:
            rate, pcm = parse_frame(data, config.max_control_bytes)
            samples = to_float32_mono(pcm, encoding="pcm16")
            self.admit()
            if self._session is None or (self._key != self._settings.stream_key()
                                         and self._idle()):
                self._begin(rate)
            session, resampler = self._session, self._resampler
            if session is None or resampler is None:
                return
            if rate != resampler.in_rate:
                now = time.monotonic()
                if now - self._rate_changed_at < RATE_CHANGE_GAP_S:
                    await self.fail("bad_audio", "the sample rate changes too often (at most "
                                    f"once per {RATE_CHANGE_GAP_S:g} s)", CLOSE_POLICY)
                    return
                self._rate_changed_at = now
                tail = resampler.flush()
                self._recent.add(tail)
                session.feed(tail)
                resampler = self._resampler = StreamResampler(rate)
            self._audio_seconds += len(samples) / rate
            audio = resampler.process(samples)
            self._recent.add(audio)
            session.feed(audio)
            self.activity.audio(session.stream_seconds, time.monotonic())
            too_fast = self._pace.check(self._audio_seconds)
            if too_fast is not None:
                await self.fail("too_fast", too_fast, CLOSE_POLICY)
        except ProtocolError as exc:
            await self.fail("bad_message", str(exc), CLOSE_POLICY)
        except AudioFormatError as exc:
            await self.fail("bad_audio", str(exc), CLOSE_POLICY)
        except ServerBusy as exc:
            self._server.stats.rejected_total += 1
            await self.fail("server_busy", str(exc), CLOSE_TRY_LATER)

    # ------------------------------------------------------------ lifecycle

    async def on_text(self, text: str) -> None:
        """Text on the data socket: not part of the protocol; ignored."""
        logger.debug("RealtimeSTT client %s sent text on the data socket; ignored", self.name)

    async def on_ws_error(self, exc: BaseException | None) -> None:
        """An oversize or malformed frame closes this socket."""
        await self.fail("too_large" if is_size_error(exc) else "bad_message",
                        f"the data socket failed: {exc}", CLOSE_TOO_BIG)

    def close_session(self) -> None:
        """Leave the engine host."""
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def end_session(self, timeout: float) -> None:
        """RealtimeSTT's ``shutdown()`` for this client: transcribe the open utterance, send
        its final (waiting at most ``timeout`` s), then close this data socket.
        """
        if self._end_task is None:
            self._end_task = asyncio.create_task(self._end(timeout),
                                                 name=f"harken-end-{self.name}")

    async def _end(self, timeout: float) -> None:
        await self.drain_for_shutdown(timeout)
        self.close_soon(CLOSE_GOING_AWAY)

    async def drain_for_shutdown(self, timeout: float) -> None:
        """Transcribe the open utterance (bounded)."""
        session = self._session
        if session is not None and session.started:
            session.flush()
            await session.drain(timeout)


class ControlSocket:
    """A control WebSocket, as the server's registry sees it."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def shutdown(self, timeout: float) -> None:
        """Close the socket ("going away"); it has nothing in flight."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code=CLOSE_GOING_AWAY), 3.0)
