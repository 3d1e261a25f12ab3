"""OpenAI-compatible ``POST /v1/audio/transcriptions``.

Accepts OpenAI's multipart form: ``file`` (integer PCM WAV, and FLAC, OGG, MP3... whatever
libsndfile reads with the ``file`` extra: harken's one decoder,
:func:`~harken.sources.file.decode_audio`), ``model`` (accepted, not used: the server runs
one engine), ``language``, ``prompt`` (the engine's initial prompt), ``response_format``
(json, text, srt, vtt, verbose_json), ``timestamp_granularities[]`` (segment, word), ``temperature``
(accepted, not used) and ``stream``. The file goes through the same streaming pipeline as a
live client (VAD segments, one final per utterance), as one session on the shared engine
host, so uploads and live streams are scheduled fairly together.

With ``stream=true`` the answer is Server-Sent Events, as OpenAI's API sends them: a
``transcript.text.delta`` event per utterance as soon as it is transcribed, then
``transcript.text.done`` with the whole text.

Errors are OpenAI-shaped JSON: ``{"error": {"message", "type", "param", "code"}}`` with 400
for a bad request, 413 for a file over the limit and 503 (with ``Retry-After``) when the
server is busy.

Thread: the handler runs on the server's event loop; decoding the file runs on a worker
thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import RealtimeConfig
from ..engine.base import DecodeHints
from ..errors import AudioFormatError, AudioSourceError, BackendNotInstalled, HarkenError
from ..events import ErrorEvent, Event, FinalTranscript
from ..formats import render
from ..sources.file import decode_audio
from .context import ServerContext
from .engine_host import ServerBusy
from .session import StreamSession

__all__ = ["RESPONSE_FORMATS", "add_routes", "render_transcription"]

logger = logging.getLogger(__name__)

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
"""The ``response_format`` values accepted."""

_FEED_CHUNK_S = 1.0
_MAX_OUTSTANDING = 4


class _RequestError(Exception):
    """An OpenAI-style error answer: HTTP status, message, param and code."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param,
                          "code": self.code}}


def _words(finals: list[FinalTranscript]) -> list[dict[str, Any]]:
    return [{"word": w.text.strip(), "start": round(w.start, 3), "end": round(w.end, 3)}
            for f in finals for w in f.words]


def render_transcription(finals: list[FinalTranscript], fmt: str, duration_s: float,
                         words: bool = False) -> tuple[str, str]:
    """Return ``(body, content_type)`` of a transcription in an OpenAI response format.

    Args:
        finals: the utterances, in order.
        fmt: one of :data:`RESPONSE_FORMATS`.
        duration_s: the file's duration in seconds.
        words: include word timings in verbose_json.
    """
    cues = [f for f in finals if f.text]
    text = " ".join(f.text for f in cues)
    usage = {"type": "duration", "seconds": round(duration_s, 3)}
    if fmt == "text":
        return text + "\n", "text/plain"
    if fmt in ("srt", "vtt"):
        return render(cues, fmt), "text/plain" if fmt == "srt" else "text/vtt"
    if fmt == "json":
        return json.dumps({"text": text, "usage": usage}, ensure_ascii=False), \
            "application/json"
    language = next((f.language for f in cues if f.language), None) or "unknown"
    body: dict[str, Any] = {
        "task": "transcribe", "language": language, "duration": round(duration_s, 3),
        "text": text,
        "segments": [{"id": i, "seek": 0, "start": round(f.start, 3), "end": round(f.end, 3),
                      "text": f.text, "tokens": [], "temperature": 0.0,
                      "avg_logprob": 0.0, "compression_ratio": 1.0, "no_speech_prob": 0.0}
                     for i, f in enumerate(cues)],
        "usage": usage,
    }
    if words:
        body["words"] = _words(cues)
    return json.dumps(body, ensure_ascii=False), "application/json"


async def _read_form(request: Any, max_bytes: int) -> tuple[bytes, dict[str, list[str]]]:
    if not request.content_type.startswith("multipart/"):
        raise _RequestError(400, "send the audio as multipart/form-data with a 'file' field",
                            "file")
    reader = await request.multipart()
    data: bytes | None = None
    fields: dict[str, list[str]] = {}
    while True:
        part = await reader.next()
        if part is None:
            break
        name = part.name or ""
        if name == "file":
            chunks: list[bytes] = []
            size = 0
            while True:
                chunk = await part.read_chunk(1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise _RequestError(413, f"the file is larger than the {max_bytes} bytes "
                                        "accepted", "file", "file_too_large")
                chunks.append(chunk)
            data = b"".join(chunks)
        else:
            value = await part.text()
            if len(value) > 4096:
                raise _RequestError(400, f"form field {name!r} is too long", name)
            fields.setdefault(name.removesuffix("[]"), []).append(value)
    if data is None:
        raise _RequestError(400, "the form has no 'file' field", "file")
    return data, fields


def _one(fields: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = fields.get(name)
    return values[-1] if values else default


async def _transcriptions(server: ServerContext, request: Any) -> Any:
    import aiohttp.web as web

    started = time.monotonic()
    status = 200
    try:
        data, fields = await _read_form(request, server.config.max_upload_bytes)
        fmt = (_one(fields, "response_format", "json") or "json").lower()
        if fmt not in RESPONSE_FORMATS:
            raise _RequestError(400, f"response_format must be one of "
                                f"{', '.join(RESPONSE_FORMATS)}, got {fmt!r}",
                                "response_format")
        stream = (_one(fields, "stream", "false") or "false").lower() in ("true", "1")
        language = _one(fields, "language")
        prompt = _one(fields, "prompt")
        granularities = fields.get("timestamp_granularities", [])
        try:
            audio, rate = await asyncio.to_thread(decode_audio, data)
        except (AudioFormatError, AudioSourceError, BackendNotInstalled) as exc:
            raise _RequestError(400, str(exc), "file", "invalid_audio") from None
        if rate < 4000 or rate > 384000:
            raise _RequestError(400, f"the file's sample rate {rate} Hz is outside "
                                "4000..384000 Hz", "file", "invalid_audio")
        if stream:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                                   "Cache-Control": "no-cache"})
            await _stream(server, request, response, audio, rate, language, prompt)
            return response
        finals = await _run(server, request, audio, rate, language, prompt, None)
        body, content_type = render_transcription(finals, fmt, len(audio) / rate,
                                                  words="word" in granularities)
        return web.Response(text=body, content_type=content_type, charset="utf-8")
    except _RequestError as exc:
        status = exc.status
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return web.json_response(exc.body(), status=exc.status, headers=headers)
    finally:
        stats = server.stats
        stats.http_requests[str(status)] = stats.http_requests.get(str(status), 0) + 1
        stats.http_latency.observe(time.monotonic() - started)


async def _run(server: ServerContext, request: Any, audio: NDArray[np.float32], rate: int,
               language: str | None, prompt: str | None,
               on_final: Any) -> list[FinalTranscript]:
    """Transcribe ``audio`` as one session; ``on_final`` (if given) sees each final."""
    finals: list[FinalTranscript] = []
    errors: list[BaseException] = []

    def emit(event: Event) -> None:
        if isinstance(event, FinalTranscript):
            finals.append(event)
            if on_final is not None:
                on_final(event)
        elif isinstance(event, ErrorEvent):
            errors.append(event.error)

    session = StreamSession(server.engine, server.session_name(request.remote or "?"), emit,
                            vad_config=server.config.vad)
    try:
        session.open()
    except ServerBusy as exc:
        raise _RequestError(503, str(exc), None, "server_busy") from None
    try:
        vad = server.vads.create()
        session.begin(vad, RealtimeConfig(partials=False, early_final=False),
                      sample_rate=rate, language=language,
                      hints=DecodeHints(initial_prompt=prompt or None))
        step = max(1, int(rate * _FEED_CHUNK_S))
        for i in range(0, len(audio), step):
            await session.wait_outstanding_below(_MAX_OUTSTANDING)
            session.feed(audio[i:i + step])
            await asyncio.sleep(0)  # let live sessions run between chunks
        session.flush()
        if not await session.drain(server.config.drain_timeout_s + len(audio) / rate):
            raise _RequestError(503, "the engine did not finish the transcription in time",
                                None, "timeout")
        if session.fatal is not None:
            raise _RequestError(500, f"the engine failed: {session.fatal}", None,
                                "engine_error")
        if errors:
            raise _RequestError(500, f"{len(errors)} utterance(s) could not be transcribed: "
                                f"{errors[0]}", None, "engine_error")
        return finals
    except ServerBusy as exc:
        raise _RequestError(503, str(exc), None, "server_busy") from None
    except HarkenError as exc:
        raise _RequestError(500, str(exc), None, "internal") from None
    finally:
        session.close()


async def _stream(server: ServerContext, request: Any, response: Any, audio: NDArray[np.float32],
                  rate: int, language: str | None, prompt: str | None) -> None:
    queue: asyncio.Queue[str] = asyncio.Queue()
    texts: list[str] = []

    def on_final(final: FinalTranscript) -> None:
        if final.text:
            delta = final.text if not texts else " " + final.text
            texts.append(final.text)
            queue.put_nowait(json.dumps({"type": "transcript.text.delta", "delta": delta,
                                         "logprobs": None}, ensure_ascii=False))

    await response.prepare(request)
    job = asyncio.ensure_future(_run(server, request, audio, rate, language, prompt,
                                     on_final))
    getter: asyncio.Future[str] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await response.write(f"data: {getter.result()}\n\n".encode())
                continue
            getter.cancel()
            while not queue.empty():
                await response.write(f"data: {queue.get_nowait()}\n\n".encode())
            break
        try:
            job.result()
        except _RequestError as exc:
            await response.write(f"event: error\ndata: {json.dumps(exc.body())}\n\n".encode())
            return
        usage = {"type": "duration", "seconds": round(len(audio) / rate, 3)}
        done_event = {"type": "transcript.text.done", "text": " ".join(texts),
                      "logprobs": None, "usage": usage}
        await response.write(f"data: {json.dumps(done_event, ensure_ascii=False)}\n\n"
                             .encode())
        await response.write_eof()
    finally:
        if getter is not None and not getter.done():
            getter.cancel()
        if not job.done():
            job.cancel()
            await asyncio.gather(job, return_exceptions=True)


def add_routes(app: Any, server: ServerContext) -> None:
    """Register the OpenAI-compatible routes on an aiohttp application."""

    async def handler(request: Any) -> Any:
        return await _transcriptions(server, request)

    app.router.add_post("/v1/audio/transcriptions", handler)
