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

Limits (for hostile clients): the form is read within caps on fields, size and stalls
(:mod:`.upload_form`); the session takes its place on the engine host before anything is
decoded; the file's declared length is checked against ``max_upload_seconds`` from its header
alone; then it is decoded in 1 s blocks fed to the pipeline (never whole, so an hour of
compressed audio costs no more memory than a minute), with decoding paused while 4 of its
finals wait for the engine, and stopped as soon as the client goes away.

Errors are OpenAI-shaped JSON: ``{"error": {"message", "type", "param", "code"}}`` with 400
for a bad request, 408 for a stalled body, 413 for a file or audio over the limits and 503
(with ``Retry-After``) when the server is busy or its engine is restarting.

Thread: the handler runs on the server's event loop; decoding runs on worker threads
(``asyncio.to_thread``), one block at a time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from ..config import RealtimeConfig
from ..engine.base import DecodeHints
from ..errors import AudioSourceError, BackendNotInstalled, HarkenError
from ..events import ErrorEvent, Event, FinalTranscript
from ..formats import render
from ..sources.file import AudioReader, open_audio
from ..text.units import join_units
from .context import ServerContext
from .engine_host import EngineUnavailable, ServerBusy
from .languages import language_problem
from .session import StreamSession
from .upload_form import RequestError, read_form

__all__ = ["RESPONSE_FORMATS", "add_routes", "render_transcription"]

logger = logging.getLogger(__name__)

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
"""The ``response_format`` values accepted."""

_FEED_CHUNK_S = 1.0
"""Seconds of audio decoded and fed at a time."""
_MAX_OUTSTANDING = 4
"""Finals of one upload waiting for the engine before decoding pauses."""


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
    text = join_units([f.text for f in cues])
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


def _busy(exc: ServerBusy) -> RequestError:
    code = "engine_unavailable" if isinstance(exc, EngineUnavailable) else "server_busy"
    return RequestError(503, str(exc), None, code)


def _one(fields: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = fields.get(name)
    return values[-1] if values else default


def _gone(request: Any) -> bool:
    """Whether the client closed its connection."""
    transport = request.transport
    return transport is None or transport.is_closing()


def _open_upload(data: bytes, max_seconds: float) -> AudioReader:
    """Open the uploaded file and check its declared length and rate (nothing decoded).

    Raises:
        RequestError: not audio (400), a rate out of range (400), too long (413).
    """
    try:
        reader = open_audio(data)
    except (AudioSourceError, BackendNotInstalled) as exc:
        raise RequestError(400, str(exc), "file", "invalid_audio") from None
    try:
        if reader.rate < 4000 or reader.rate > 384000:
            raise RequestError(400, f"the file's sample rate {reader.rate} Hz is outside "
                                "4000..384000 Hz", "file", "invalid_audio")
        if reader.frames / reader.rate > max_seconds:
            raise _too_long(max_seconds)
    except BaseException:
        reader.close()
        raise
    return reader


def _too_long(max_seconds: float) -> RequestError:
    return RequestError(413, f"the audio is longer than the {max_seconds:g} s accepted",
                         "file", "audio_too_long")


async def _transcriptions(server: ServerContext, request: Any) -> Any:
    import aiohttp.web as web

    started = time.monotonic()
    status = 200
    try:
        data, fields = await read_form(request, server.config)
        fmt = (_one(fields, "response_format", "json") or "json").lower()
        if fmt not in RESPONSE_FORMATS:
            raise RequestError(400, f"response_format must be one of "
                                f"{', '.join(RESPONSE_FORMATS)}, got {fmt!r}",
                                "response_format")
        stream = (_one(fields, "stream", "false") or "false").lower() in ("true", "1")
        language = _one(fields, "language") or None
        problem = language_problem(server.engine.ready_info, (language,))
        if problem:
            raise RequestError(400, problem, "language")
        job = _Job(server, request, language, _one(fields, "prompt"))
        job.open()  # admission, before anything is decoded
        try:
            job.reader = await asyncio.to_thread(_open_upload, data,
                                                 server.config.max_upload_seconds)
            del data
            if stream:
                response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                                       "Cache-Control": "no-cache"})
                await _stream(job, response)
                return response
            finals = await job.run(None)
        finally:
            job.close()
        body, content_type = render_transcription(
            finals, fmt, job.duration_s, words="word" in fields.get("timestamp_granularities",
                                                                    []))
        return web.Response(text=body, content_type=content_type, charset="utf-8")
    except RequestError as exc:
        status = exc.status
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        response = web.json_response(exc.body(), status=exc.status, headers=headers)
        if exc.status in (408, 413):
            response.force_close()  # the rest of the body is not read
        return response
    finally:
        stats = server.stats
        stats.http_requests[str(status)] = stats.http_requests.get(str(status), 0) + 1
        stats.http_latency.observe(time.monotonic() - started)


class _Job:
    """One upload's transcription: its session on the engine host and its decoder."""

    def __init__(self, server: ServerContext, request: Any, language: str | None,
                 prompt: str | None) -> None:
        self._server = server
        self._request = request
        self._language = language
        self._prompt = prompt
        self.reader: AudioReader | None = None
        self.duration_s = 0.0
        """Seconds of audio decoded so far."""
        self._finals: list[FinalTranscript] = []
        self._errors: list[BaseException] = []
        self._on_final: Callable[[FinalTranscript], None] | None = None
        self._session = StreamSession(server.engine,
                                      server.session_name(request.remote or "?"), self._emit,
                                      vad_config=server.config.vad)

    def _emit(self, event: Event) -> None:
        if isinstance(event, FinalTranscript):
            self._finals.append(event)
            if self._on_final is not None:
                self._on_final(event)
        elif isinstance(event, ErrorEvent):
            self._errors.append(event.error)

    def open(self) -> None:
        """Take a place on the engine host (503 when there is none)."""
        try:
            self._session.open()
        except ServerBusy as exc:
            raise _busy(exc) from None

    def close(self) -> None:
        """Leave the host (withdrawing what is queued) and close the decoder. Idempotent."""
        self._session.close()
        reader, self.reader = self.reader, None
        if reader is not None:
            reader.close()

    async def run(self, on_final: Callable[[FinalTranscript], None] | None
                  ) -> list[FinalTranscript]:
        """Decode the file in blocks through the streaming pipeline; return its finals.

        Stops (499) when the client goes away, 413 past the length limit.
        """
        self._on_final = on_final
        reader, session = self.reader, self._session
        assert reader is not None
        limit = self._server.config.max_upload_seconds
        try:
            vads = self._server.vads
            session.begin(vads.create(), RealtimeConfig(partials=False, early_final=False),
                          sample_rate=reader.rate, language=self._language,
                          hints=DecodeHints(initial_prompt=self._prompt or None),
                          turn=vads.turn(self._server.config.vad))
            step = max(1, int(reader.rate * _FEED_CHUNK_S))
            while True:
                await session.wait_outstanding_below(_MAX_OUTSTANDING)
                if _gone(self._request):
                    raise RequestError(499, "the client went away", None, "client_gone")
                block = await asyncio.to_thread(reader.read, step)
                if not len(block):
                    break
                self.duration_s += len(block) / reader.rate
                if self.duration_s > limit:
                    raise _too_long(limit)
                session.feed(block)
            session.flush()
            await self._drain()
            if session.fatal is not None:
                raise RequestError(503, f"the speech engine failed ({session.fatal}); try "
                                    "again in a few seconds", None, "engine_unavailable")
            if self._errors:
                raise RequestError(500, f"{len(self._errors)} utterance(s) could not be "
                                    f"transcribed: {self._errors[0]}", None, "engine_error")
            return self._finals
        except ServerBusy as exc:
            raise _busy(exc) from None
        except HarkenError as exc:
            raise RequestError(500, str(exc), None, "internal") from None

    async def _drain(self) -> None:
        """Wait for the last finals, bounded in time, giving up if the client goes away."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._server.config.drain_timeout_s + self.duration_s
        while not await self._session.drain(0.5):
            if _gone(self._request):
                raise RequestError(499, "the client went away", None, "client_gone")
            if loop.time() > deadline:
                raise RequestError(503, "the engine did not finish the transcription in "
                                    "time", None, "timeout")


async def _stream(job: _Job, response: Any) -> None:
    """Answer with Server-Sent Events: a delta per final, then the whole text."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    texts: list[str] = []

    def on_final(final: FinalTranscript) -> None:
        if final.text:
            delta = final.text if not texts else " " + final.text
            texts.append(final.text)
            queue.put_nowait(json.dumps({"type": "transcript.text.delta", "delta": delta,
                                         "logprobs": None}, ensure_ascii=False))

    await response.prepare(job._request)
    work = asyncio.ensure_future(job.run(on_final))
    getter: asyncio.Future[str] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await response.write(f"data: {getter.result()}\n\n".encode())
                continue
            getter.cancel()
            while not queue.empty():
                await response.write(f"data: {queue.get_nowait()}\n\n".encode())
            break
        try:
            work.result()
        except RequestError as exc:
            await response.write(f"event: error\ndata: {json.dumps(exc.body())}\n\n".encode())
            return
        usage = {"type": "duration", "seconds": round(job.duration_s, 3)}
        done_event = {"type": "transcript.text.done", "text": join_units(texts),
                      "logprobs": None, "usage": usage}
        await response.write(f"data: {json.dumps(done_event, ensure_ascii=False)}\n\n"
                             .encode())
        await response.write_eof()
    finally:
        if getter is not None and not getter.done():
            getter.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)


def add_routes(app: Any, server: ServerContext) -> None:
    """Register the OpenAI-compatible routes on an aiohttp application."""

    async def handler(request: Any) -> Any:
        return await _transcriptions(server, request)

    app.router.add_post("/v1/audio/transcriptions", handler)

