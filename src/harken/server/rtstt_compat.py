"""RealtimeSTT's server protocol on the harken server, so RealtimeSTT's own client works.

RealtimeSTT (KoljaB/RealtimeSTT 1.1.2) talks to its ``stt-server`` over two WebSockets,
and its ``AudioToTextRecorderClient`` takes their URLs (``control_url``, ``data_url``;
``ws://127.0.0.1:8011`` and ``ws://127.0.0.1:8012`` by default). harken serves both:

- ``GET /rtstt/control`` and ``GET /rtstt/data`` on the server's own port, and
- with ``ServerConfig.rtstt_ports`` (``harken serve --rtstt-ports 8011,8012``) also at
  ``/`` on two extra ports, so a client with its default URLs works unchanged.

Control socket (JSON text both ways)::

    {"command": "set_parameter", "parameter": "language", "value": "en"}
        -> {"status": "success", "message": "Parameter language set to en"}
    {"command": "get_parameter", "parameter": "is_recording", "request_id": 3}
        -> {"status": "success", "parameter": "is_recording", "value": false,
            "request_id": 3}
    {"command": "call_method", "method": "stop", "args": [], "kwargs": {}}
        -> {"status": "success", "message": "Method stop called"}
    anything else -> {"status": "error", "message": "..."}

Data socket: each binary frame is a 4-byte little-endian length ``n``, ``n`` bytes of JSON
metadata (``{"sampleRate": 44100, ...}``) and 16-bit little-endian mono PCM at that rate.
The server answers with JSON text: ``{"type": "vad_detect_start"}`` (listening for speech),
``vad_detect_stop`` and ``recording_start`` (speech began), ``{"type": "realtime", "text":
...}`` (live text), ``recording_stop`` (speech ended), ``{"type": "transcription_start",
"audio_bytes_base64": ...}`` (the utterance's 16 kHz PCM16 audio, as RealtimeSTT sends it),
``{"type": "fullSentence", "text": ...}`` (the final text). A malformed frame gets
``{"type": "error", "message": ..., "code": ...}`` and closes that data socket only.

Pairing: RealtimeSTT's server has one recorder for everyone. harken gives each data socket
its own :class:`~harken.server.session.StreamSession` on the shared engine, and applies a
control socket's parameters and methods to the data sockets from the same client address
(host). Parameters that change segmentation or the language take effect at the next pause
(no utterance open, no final pending), so no utterance is cut.

Thread: everything runs on the server's asyncio event loop (aiohttp handler tasks plus one
sender task per data socket).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hmac
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..audio.convert import check_sample_rate, float32_to_pcm16, to_float32_mono
from ..audio.resample import StreamResampler
from ..config import SAMPLE_RATE, VadConfig
from ..errors import AudioFormatError, ConfigError, HarkenError, ProtocolError
from ..events import (
    ErrorEvent,
    Event,
    FinalTranscript,
    PartialTranscript,
    SpeechEnded,
    SpeechStarted,
)
from .connection_base import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    CLOSE_TRY_LATER,
    AudioPace,
    WsConnection,
    import_aiohttp,
    is_size_error,
    oversize,
    serve,
)
from .engine_host import ServerBusy
from .session import StreamSession

if TYPE_CHECKING:
    from .app import Server

__all__ = ["CONTROL_PATH", "DATA_PATH", "RtsttHub", "add_routes", "check_ports", "parse_frame",
           "tidy_text"]

logger = logging.getLogger(__name__)

CONTROL_PATH = "/rtstt/control"
"""The control socket's path on the server's own port."""
DATA_PATH = "/rtstt/data"
"""The data socket's path on the server's own port."""

_SETTABLE = ("language", "post_speech_silence_duration", "wake_word_activation_delay",
             "use_wake_words")
"""Parameters a client may set (RealtimeSTT's list, less those harken cannot honour)."""
_READABLE = _SETTABLE + ("silero_sensitivity", "is_recording", "listen_start",
                         "recording_stop_time", "last_transcription_bytes_b64")
"""Parameters a client may read."""
_KNOWN = _READABLE + ("deactivity_silence_confirmation_duration", "speech_end_silence_start",
                      "last_transcription_bytes")
"""RealtimeSTT's allowed parameters: the rest are answered "not supported"."""
_NO_OP_METHODS = ("clear_audio_queue", "wakeup", "set_microphone")
"""Methods with nothing to do here: audio is processed as it arrives (no queue), there is no
wake word on this path and no server-side microphone."""
_FINISH_METHODS = ("stop", "perform_final_transcription")
"""Methods that end the open utterance now and transcribe it."""


def check_ports(ports: object) -> tuple[int, int] | None:
    """Validate ``ServerConfig.rtstt_ports`` and return it.

    Args:
        ports: None, or a (control, data) tuple of TCP ports from 0 to 65535 (0 picks a
            free one); the two must differ unless 0.

    Raises:
        ConfigError: anything else.
    """
    if ports is None:
        return None
    if not isinstance(ports, tuple) or len(ports) != 2 or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x <= 65535 for x in ports):
        raise ConfigError("rtstt_ports must be None or a (control, data) tuple of two ports "
                          f"from 0 to 65535, e.g. (8011, 8012); got {ports!r}")
    if ports[0] == ports[1] != 0:
        raise ConfigError(f"rtstt_ports must be two different ports, got {ports!r}")
    return ports[0], ports[1]


def _token_ok(request: Any, token: str | None) -> bool:
    """Whether a request to an extra port carries the server's token (if it has one)."""
    if token is None:
        return True
    presented: str | None = request.query.get("token")
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        presented = value.strip()
    return presented is not None and hmac.compare_digest(presented.encode("utf-8"),
                                                         token.encode("utf-8"))


def tidy_text(text: str) -> str:
    """Tidy a transcript the way RealtimeSTT's server does before sending it.

    Leading spaces and a leading "..." go, a stray quote after a final "..." goes, and the
    first letter is upper-cased.
    """
    text = text.lstrip()
    if text.startswith("..."):
        text = text[3:].lstrip()
    if text.endswith("...'.") or text.endswith("...'"):
        text = text[:-1]
    return text[:1].upper() + text[1:]


def parse_frame(data: bytes, max_header_bytes: int) -> tuple[int, bytes]:
    """Split one data-socket frame into its sample rate and its PCM16 bytes.

    Args:
        data: the binary WebSocket message.
        max_header_bytes: the longest JSON metadata accepted, in bytes.

    Returns:
        ``(sample_rate_hz, pcm16_bytes)``.

    Raises:
        ProtocolError: the length prefix or the JSON metadata is malformed.
        AudioFormatError: the sample rate is out of range or the audio is not whole
            16-bit samples.
    """
    if len(data) < 4:
        raise ProtocolError(f"an audio frame of {len(data)} bytes is shorter than its 4-byte "
                            "metadata length")
    size = int.from_bytes(data[:4], "little")
    if size > max_header_bytes:
        raise ProtocolError(f"the frame's metadata is {size} bytes long; at most "
                            f"{max_header_bytes} bytes are accepted")
    if 4 + size > len(data):
        raise ProtocolError(f"the frame announces {size} bytes of metadata but holds only "
                            f"{len(data) - 4}")
    try:
        meta = json.loads(data[4:4 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("the frame's metadata is not JSON; expected e.g. "
                            '{"sampleRate": 16000}') from None
    if not isinstance(meta, dict) or "sampleRate" not in meta:
        raise ProtocolError('the frame\'s metadata has no "sampleRate"; expected e.g. '
                            '{"sampleRate": 16000}')
    rate = check_sample_rate(meta["sampleRate"])
    pcm = data[4 + size:]
    if len(pcm) % 2:
        raise AudioFormatError(f"the frame holds {len(pcm)} bytes of audio; 16-bit PCM needs "
                               "an even number")
    return rate, pcm


@dataclasses.dataclass
class _Settings:
    """A client's parameters (set on its control socket)."""

    language: str | None = None
    post_speech_silence_duration: float = 0.5
    wake_word_activation_delay: float = 0.0

    def stream_key(self) -> tuple[str | None, float]:
        """What a stream is built from: a change needs a new stream."""
        return self.language, self.post_speech_silence_duration


class _Client:
    """The control and data sockets from one client address."""

    def __init__(self, settings: _Settings) -> None:
        self.settings = settings
        self.controls = 0
        self.data: set[_DataSocket] = set()


class _Recent:
    """The last samples of a 16 kHz stream, addressable by absolute sample index."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
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
        while self._chunks and self._held - len(self._chunks[0]) >= self._limit:
            self._held -= len(self._chunks.popleft())

    def take(self, start: int, end: int) -> NDArray[np.float32]:
        """Samples ``[start, end)`` (the part still held)."""
        first = self.total - self._held
        if not self._chunks or end <= first:
            return np.zeros(0, dtype=np.float32)
        held = np.concatenate(list(self._chunks))
        return held[max(start - first, 0):max(end - first, 0)]


class _DataSocket(WsConnection):
    """One data WebSocket: its stream session and its state (RealtimeSTT's recorder)."""

    label = "RealtimeSTT client"
    shutdown_code = "shutdown"

    def __init__(self, hub: RtsttHub, client: _Client, ws: Any, request: Any,
                 name: str) -> None:
        super().__init__(hub.server, ws, request, name)
        self._client = client
        self._session: StreamSession | None = None
        self._key: tuple[str | None, float] | None = None
        self._resampler: StreamResampler | None = None
        vad = hub.server.config.vad
        self._recent = _Recent(int((vad.max_utterance_s + vad.pre_roll_ms / 1000 + 2.0)
                                   * SAMPLE_RATE))
        self._pace = AudioPace(hub.server.config.max_audio_rate,
                               hub.server.config.audio_burst_s)
        """Counts from the first stream's start."""
        self._audio_seconds = 0.0
        self.recording = False
        """True while an utterance is open (RealtimeSTT's ``is_recording``)."""
        self.listen_start = 0.0
        """Wall-clock time (time.time()) the stream last started listening for speech."""
        self.recording_stop_time = 0.0
        """Wall-clock time (time.time()) the last utterance ended."""
        self.last_audio: NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        """The last utterance's 16 kHz audio."""

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
            self.send({"type": "vad_detect_stop"})
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
                self._listening()
            else:
                self.last_audio = self._recent.take(round(event.start * SAMPLE_RATE),
                                                    round(event.end * SAMPLE_RATE))
                self.send({"type": "transcription_start", "audio_bytes_base64":
                           base64.b64encode(float32_to_pcm16(self.last_audio)).decode("ascii")})
        elif isinstance(event, FinalTranscript):
            stats.finals_sent += 1
            self.send({"type": "fullSentence", "text": tidy_text(event.text)})
            self._listening()
        elif isinstance(event, ErrorEvent):
            self.send({"type": "error", "message": str(event.error), "code": "engine"})
            if event.fatal:
                self.close_soon(CLOSE_INTERNAL)

    def _listening(self) -> None:
        self.listen_start = time.time()
        self.send({"type": "vad_detect_start"})

    # ------------------------------------------------------------ stream

    def _begin(self, rate: int) -> None:
        """Start a new stream (a new session) with the client's current settings.

        Raises:
            ServerBusy: the host has no room for the session.
        """
        old, self._session = self._session, None
        if old is not None:
            old.close()
        settings = self._client.settings
        vad_config: VadConfig = self._server.config.vad
        silence_ms = max(32, min(60_000, round(settings.post_speech_silence_duration * 1000)))
        if silence_ms != vad_config.post_speech_silence_ms:
            vad_config = dataclasses.replace(vad_config, post_speech_silence_ms=silence_ms)
        session = StreamSession(self._server.host, self.name, self._on_event,
                                vad_config=vad_config)
        session.open()
        self._session = session
        session.begin(self._server.vads.create(), self._server.config.realtime,
                      sample_rate=SAMPLE_RATE, language=settings.language)
        self._key = settings.stream_key()
        self._resampler = StreamResampler(rate)
        self._recent = _Recent(self._recent._limit)
        self.recording = False
        self._listening()

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
            if self._session is None or (self._key != self._client.settings.stream_key()
                                         and self._idle()):
                self._begin(rate)
            session, resampler = self._session, self._resampler
            if session is None or resampler is None:
                return
            if rate != resampler.in_rate:
                tail = resampler.flush()
                self._recent.add(tail)
                session.feed(tail)
                resampler = self._resampler = StreamResampler(rate)
            self._audio_seconds += len(samples) / rate
            audio = resampler.process(samples)
            self._recent.add(audio)
            session.feed(audio)
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

    async def drain_for_shutdown(self, timeout: float) -> None:
        """Transcribe the open utterance (bounded)."""
        session = self._session
        if session is not None and session.started:
            session.flush()
            await session.drain(timeout)


class _ControlSocket:
    """A control WebSocket, as the server's registry sees it."""

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def shutdown(self, timeout: float) -> None:
        """Close the socket ("going away"); it has nothing in flight."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(code=CLOSE_GOING_AWAY), 3.0)


class RtsttHub:
    """RealtimeSTT's two endpoints on one harken :class:`~harken.server.app.Server`.

    Built by :func:`add_routes` when the server starts; :meth:`listen` opens the extra ports
    and :meth:`close` closes them. Its sockets join the server's ``ws_connections``, which
    the server shuts down before it closes the hub.

    Args:
        server: the server whose engine host, VAD factory, config and stats are used.
    """

    def __init__(self, server: Server) -> None:
        self.server = server
        self._clients: dict[str, _Client] = {}
        self._runners: list[Any] = []
        self._closed = False
        self.ports: tuple[int, int] | None = None
        """The (control, data) ports serving the protocol at "/", once :meth:`listen` ran."""

    @classmethod
    def add_routes(cls, app: Any, server: Server) -> RtsttHub:
        """Add the control and data sockets to the server's aiohttp application.

        Returns:
            The hub serving them (its :meth:`listen` opens the extra ports).
        """
        hub = cls(server)
        app.router.add_get(CONTROL_PATH, hub.control_handler)
        app.router.add_get(DATA_PATH, hub.data_handler)
        return hub

    @property
    def connections(self) -> int:
        """RealtimeSTT sockets (control and data) connected now."""
        return sum(len(c.data) + c.controls for c in self._clients.values())

    def _client(self, request: Any) -> tuple[str, _Client]:
        host = str(request.remote or "?")
        client = self._clients.get(host)
        if client is None:
            realtime_silence = self.server.config.vad.post_speech_silence_ms / 1000
            client = self._clients[host] = _Client(_Settings(
                post_speech_silence_duration=realtime_silence))
        return host, client

    def _release(self, host: str, client: _Client) -> None:
        if not client.controls and not client.data:
            self._clients.pop(host, None)

    async def listen(self, host: str, control_port: int, data_port: int) -> None:
        """Serve the control and data sockets at "/" on two more ports.

        Raises:
            OSError: a port is in use.
        """
        web = import_aiohttp()
        token = self.server.config.token

        async def need_token(request: Any, handler: Any) -> Any:
            if _token_ok(request, token):
                return await handler(request)
            logger.info("refused a RealtimeSTT connection from %s: no valid token",
                        request.remote)
            return web.json_response({"status": "error", "message": "this server needs a "
                                      "token: add ?token=<token> to the URL"}, status=401)

        ports: list[int] = []
        for port, handler in ((control_port, self.control_handler),
                              (data_port, self.data_handler)):
            app = web.Application(middlewares=[web.middleware(need_token)])
            app.router.add_get("/", handler)
            runner = web.AppRunner(app, access_log=None,
                                   shutdown_timeout=self.server.config.drain_timeout_s)
            await runner.setup()
            self._runners.append(runner)
            site = web.TCPSite(runner, host, port)
            await site.start()
            sockets = site._server.sockets if site._server is not None else []
            ports.append(int(sockets[0].getsockname()[1]) if sockets else port)
        self.ports = (ports[0], ports[1])
        logger.info("RealtimeSTT protocol on ports %d (control) and %d (data)", *self.ports)

    async def close(self, timeout: float) -> None:
        """Close the extra ports (the server has shut the sockets down already).

        Idempotent.

        Args:
            timeout: unused: the server's registry already waited for the data sockets'
                finals.
        """
        if self._closed:
            return
        self._closed = True
        runners, self._runners = self._runners, []
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()

    # ------------------------------------------------------------ data socket

    async def data_handler(self, request: Any) -> Any:
        """aiohttp handler of the data socket."""
        web = import_aiohttp()
        cfg = self.server.config
        ws = web.WebSocketResponse(max_msg_size=cfg.max_audio_frame_bytes * 2 + 1024,
                                   timeout=2.0, heartbeat=None)
        await ws.prepare(request)
        self.server.stats.connections_total += 1
        host, client = self._client(request)
        sock = _DataSocket(self, client, ws, request,
                           self.server.session_name(f"rtstt-{host}"))
        client.data.add(sock)
        try:
            await serve(sock, self.server.ws_connections)
        finally:
            client.data.discard(sock)
            self._release(host, client)
        return ws

    # ------------------------------------------------------------ control socket

    async def control_handler(self, request: Any) -> Any:
        """aiohttp handler of the control socket."""
        web = import_aiohttp()
        limit = self.server.config.max_control_bytes
        ws = web.WebSocketResponse(max_msg_size=limit * 4, timeout=2.0, heartbeat=None)
        await ws.prepare(request)
        registry = self.server.ws_connections
        if registry.closing:
            await ws.close(code=CLOSE_GOING_AWAY)
            return ws
        host, client = self._client(request)
        client.controls += 1
        socket = _ControlSocket(ws)
        registry.add(socket)
        try:
            async for msg in ws:
                if msg.type == web.WSMsgType.TEXT:
                    if len(msg.data) > limit:
                        reply = _error(f"Command longer than {limit} bytes")
                    else:
                        reply = self.command(client, msg.data)
                elif msg.type == web.WSMsgType.BINARY:
                    reply = _error("The control socket takes JSON text commands")
                else:
                    break
                await ws.send_str(json.dumps(reply))
        except (ConnectionError, RuntimeError) as exc:
            logger.debug("RealtimeSTT control socket from %s failed: %s", host, exc)
        finally:
            registry.discard(socket)
            client.controls -= 1
            self._release(host, client)
        return ws

    def command(self, client: _Client, text: str) -> dict[str, Any]:
        """Run one control command and return RealtimeSTT's answer (never raises)."""
        try:
            data = json.loads(text)
        except ValueError:
            return _error("Invalid JSON command")
        if not isinstance(data, dict):
            return _error("Invalid JSON command")
        command = data.get("command")
        try:
            if command == "set_parameter":
                return self._set(client, data.get("parameter"), data.get("value"))
            if command == "get_parameter":
                return self._get(client, data.get("parameter"), data.get("request_id"))
            if command == "call_method":
                return self._call(client, data.get("method"))
        except (HarkenError, TypeError, ValueError) as exc:
            return _error(f"{command} failed: {exc}")
        return _error(f"Unknown command {command}")

    def _set(self, client: _Client, name: object, value: object) -> dict[str, Any]:
        settings = client.settings
        if name not in _KNOWN:
            return _error(f"Parameter {name} is not allowed (set_parameter)")
        if name not in _SETTABLE:
            return _error(f"Parameter {name} is not supported by the harken server "
                          "(set_parameter)")
        if name == "language":
            if value is not None and not isinstance(value, str):
                return _error(f"language must be a language code or \"\", got {value!r}")
            settings.language = value or None
        elif name == "use_wake_words":
            if value:
                return _error("wake words are not available on the harken server's "
                              "RealtimeSTT endpoint (set_parameter)")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0 <= value <= 60:
                return _error(f"{name} must be a number of seconds from 0 to 60, "
                              f"got {value!r}")
            setattr(settings, str(name), float(value))
        return {"status": "success", "message": f"Parameter {name} set to {value}"}

    def _get(self, client: _Client, name: object, request_id: object) -> dict[str, Any]:
        if name not in _KNOWN:
            return _error(f"Parameter {name} is not allowed (get_parameter)")
        if name not in _READABLE:
            return _error(f"Parameter {name} is not supported by the harken server "
                          "(get_parameter)")
        settings = client.settings
        data = max(client.data, key=lambda d: d.listen_start, default=None)
        value: Any
        if name == "language":
            value = settings.language or ""
        elif name == "use_wake_words":
            value = False
        elif name == "silero_sensitivity":
            value = round(1.0 - self.server.config.vad.silero_threshold, 6)
        elif name == "is_recording":
            value = any(d.recording for d in client.data)
        elif name == "listen_start":
            value = data.listen_start if data is not None else 0.0
        elif name == "recording_stop_time":
            value = max((d.recording_stop_time for d in client.data), default=0.0)
        elif name == "last_transcription_bytes_b64":
            audio = data.last_audio if data is not None else np.zeros(0, dtype=np.float32)
            value = base64.b64encode(float32_to_pcm16(audio)).decode("ascii")
        else:
            value = getattr(settings, str(name))
        reply: dict[str, Any] = {"status": "success", "parameter": name, "value": value}
        if request_id is not None:
            reply["request_id"] = request_id
        return reply

    def _call(self, client: _Client, method: object) -> dict[str, Any]:
        if method in _FINISH_METHODS:
            for sock in list(client.data):
                sock.finish_utterance()
        elif method == "abort":
            for sock in list(client.data):
                sock.abort_utterance()
        elif method not in _NO_OP_METHODS:
            return _error(f"Method {method} is not allowed")
        return {"status": "success", "message": f"Method {method} called"}


def _error(message: str) -> dict[str, Any]:
    return {"status": "error", "message": message}


add_routes = RtsttHub.add_routes
"""``add_routes(app, server)``: the protocol-module entry point (see :mod:`.openai_api`)."""
