"""OpenAI-compatible ``POST /v1/audio/speech``: text in, streamed speech out.

The JSON body is OpenAI's: ``model`` (accepted, not used), ``input`` (1 to 4096
characters), ``voice`` (OpenAI's names such as "alloy" mean the server's default voice;
an installed voice name of the server's engine picks that voice), ``response_format``
("wav" or "pcm": 16-bit little-endian mono at 24 kHz, as OpenAI sends them) and ``speed``
(0.25 to 4.0). The answer is streamed: each sentence's audio is sent as soon as it is
synthesised, so the first bytes leave long before the last sentence is ready. A WAV stream
declares its lengths as unknown (0xFFFFFFFF), as streamed WAV from OpenAI does.

Each voice runs in one :class:`~harken.speak.host.SpeechEngineHost` (its own program),
started on the first request that needs it and shared by every later request; at most
``_MAX_VOICES`` voices are kept. Requests in flight are limited to ``max_sessions``; more get
503. The token middleware guards this route like the others.

Thread: the handler runs on the server's event loop; each request's
:class:`~harken.speak.speaker.Speaker` delivers on its own thread, and chunks hop onto the
loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from typing import Any

from ..errors import ConfigError, HarkenError
from .context import ServerContext

__all__ = ["MAX_INPUT_CHARS", "OPENAI_VOICES", "SpeechRoute", "wav_stream_header"]

logger = logging.getLogger(__name__)

MAX_INPUT_CHARS = 4096
"""The longest ``input`` accepted (OpenAI's limit), in characters."""
OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova",
                           "sage", "shimmer", "verse", "marin", "cedar"})
"""OpenAI's voice names; each means the server's default voice."""
RATE = 24000
"""The sample rate of the audio sent, in Hz (OpenAI's)."""
_MAX_VOICES = 4
_END = object()


def wav_stream_header(sample_rate: int) -> bytes:
    """A 44-byte header of a 16-bit mono WAV stream of unknown length."""
    unknown = 0xFFFFFFFF
    return (b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) +
            b"data" + struct.pack("<I", unknown))


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


class SpeechRoute:
    """The speech endpoint and the engine programs it keeps (one per voice used).

    Args:
        context: the running server.
    """

    def __init__(self, context: ServerContext) -> None:
        self._context = context
        self._hosts: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._busy = 0
        self._closed = False

    def add_routes(self, app: Any) -> None:
        """Register ``POST /v1/audio/speech``."""
        app.router.add_post("/v1/audio/speech", self._handle)

    async def close(self) -> None:
        """Close every engine program; idempotent."""
        self._closed = True
        hosts, self._hosts = list(self._hosts.values()), {}
        for host in hosts:
            await asyncio.to_thread(host.close)

    async def _host(self, voice: str | None) -> Any:
        from ..speak.host import SpeechEngineHost

        config = self._context.config
        if voice is None or voice in OPENAI_VOICES:
            voice = config.speech_voice
        key = voice or ""
        async with self._lock:
            host = self._hosts.get(key)
            if host is not None and host.running:
                return host
            if len(self._hosts) >= _MAX_VOICES and key not in self._hosts:
                raise _BadRequest(400, f"this server keeps at most {_MAX_VOICES} voices; use "
                                  "one already in use", "voice")
            try:
                host = SpeechEngineHost(voice, engine=config.speech_engine,
                                        start_timeout_s=config.start_timeout_s)
            except (ConfigError, ImportError) as exc:
                raise _BadRequest(400, str(exc), "voice") from exc
            if self._closed:
                raise _BadRequest(503, "the server is shutting down")
            old = self._hosts.pop(key, None)
            if old is not None:
                await asyncio.to_thread(old.close)
            await asyncio.to_thread(host.start)
            self._hosts[key] = host
            return host

    @staticmethod
    def _parse(body: Any) -> tuple[str, str | None, str, float]:
        if not isinstance(body, dict):
            raise _BadRequest(400, "the body must be a JSON object")
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            raise _BadRequest(400, "input must be a non-empty string", "input")
        if len(text) > MAX_INPUT_CHARS:
            raise _BadRequest(400, f"input is {len(text)} characters; at most "
                              f"{MAX_INPUT_CHARS} are allowed", "input")
        voice = body.get("voice")
        if voice is not None and not (isinstance(voice, str) and 0 < len(voice) <= 200):
            raise _BadRequest(400, "voice must be a voice name", "voice")
        fmt = body.get("response_format", "wav")
        if fmt not in ("wav", "pcm"):
            raise _BadRequest(400, f"response_format {fmt!r} is not supported here: use wav "
                              "or pcm", "response_format")
        speed = body.get("speed", 1.0)
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) \
                or not 0.25 <= speed <= 4.0:
            raise _BadRequest(400, "speed must be a number from 0.25 to 4.0", "speed")
        return text, voice, str(fmt), float(speed)

    def _count(self, status: int) -> None:
        counts = self._context.stats.http_requests
        counts[str(status)] = counts.get(str(status), 0) + 1

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        try:
            try:
                body = json.loads(await request.read() or b"null")
            except (ValueError, UnicodeDecodeError) as exc:
                raise _BadRequest(400, f"the body is not JSON: {exc}") from exc
            text, voice, fmt, speed = self._parse(body)
            if self._busy >= self._context.config.max_sessions:
                raise _BadRequest(503, "server busy: too many speech requests at once")
            self._busy += 1
            try:
                host = await self._host(voice)
                return await self._stream(request, host, text, fmt, speed)
            finally:
                self._busy -= 1
        except _BadRequest as exc:
            self._count(exc.status)
            kind = "server_error" if exc.status >= 500 else "invalid_request_error"
            headers = {"Retry-After": "1"} if exc.status == 503 else None
            return web.json_response({"error": {"message": exc.message, "type": kind,
                                                "param": exc.param, "code": None}},
                                     status=exc.status, headers=headers)
        except HarkenError as exc:
            logger.warning("speech request failed: %s", exc)
            self._count(500)
            return web.json_response({"error": {"message": str(exc), "type": "server_error",
                                                "param": None, "code": None}}, status=500)

    async def _stream(self, request: Any, host: Any, text: str, fmt: str,
                      speed: float) -> Any:
        from aiohttp import web

        from ..speak.speaker import Speaker

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def on_audio(chunk: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, chunk.tobytes())

        speaker = Speaker(host=host, sample_rate=RATE, sample_format="int16",
                          on_audio=on_audio, realtime=False, speed=speed, chunk_ms=100)
        await asyncio.to_thread(speaker.start)
        response = web.StreamResponse(headers={
            "Content-Type": "audio/wav" if fmt == "wav" else "audio/pcm"})
        try:
            handle = speaker.speak(text)

            async def finish() -> None:
                try:
                    await asyncio.to_thread(handle.wait)
                finally:
                    queue.put_nowait(_END)

            waiter = loop.create_task(finish())
            await response.prepare(request)
            if fmt == "wav":
                await response.write(wav_stream_header(RATE))
            while (item := await queue.get()) is not _END:
                await response.write(item)
            await waiter  # raises when synthesis failed: the stream ends early
            await response.write_eof()
            self._count(200)
        except (ConnectionResetError, asyncio.CancelledError):
            logger.debug("a speech client went away; stopping its speech")
            raise
        except HarkenError as exc:
            logger.warning("speech synthesis failed mid-stream: %s", exc)
            self._count(500)
        finally:
            await asyncio.to_thread(speaker.close)
        return response
