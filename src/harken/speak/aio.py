"""AsyncSpeaker: the :class:`~harken.speak.speaker.Speaker` for asyncio programs.

Blocking steps (start, close, stop) run in a worker thread through ``asyncio.to_thread``;
an async iterable of text pieces is consumed by a task on the caller's loop; the iterator
sink is bridged to an :class:`asyncio.Queue` with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from ..errors import ConfigError, LifecycleError
from .report import SpeechHandle, SpeechReport
from .sinks import Chunk
from .speaker import Speaker, TextInput
from .utterance import Utterance

__all__ = ["AsyncSpeaker", "AsyncSpeechHandle"]

_END = object()


class AsyncSpeechHandle:
    """An awaitable view of a :class:`~harken.speak.report.SpeechHandle`."""

    def __init__(self, handle: SpeechHandle, task: asyncio.Task[None] | None = None) -> None:
        self.handle = handle
        self._task = task

    @property
    def done(self) -> bool:
        """True once everything was delivered, or it was stopped or failed."""
        return self.handle.done

    @property
    def report(self) -> SpeechReport:
        """What has been delivered so far."""
        return self.handle.report

    async def wait(self, timeout: float | None = None) -> SpeechReport:
        """Wait until done; return the report (raises as ``SpeechHandle.wait`` does)."""
        return await asyncio.to_thread(self.handle.wait, timeout)


class AsyncSpeaker:
    """Speaks text into a sink from asyncio code; the arguments are :class:`Speaker`'s.

    With no ``on_audio`` and no ``sink``, read the audio with ``async for chunk in
    speaker.chunks()``.
    """

    def __init__(self, voice: str | None = None, **kwargs: Any) -> None:
        self._queue: asyncio.Queue[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._iterate = kwargs.get("on_audio") is None and kwargs.get("sink") in (
            None, "iterator")
        if self._iterate:
            kwargs["on_audio"] = self._forward
            kwargs.pop("sink", None)
        self._speaker = Speaker(voice, **kwargs)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def speaker(self) -> Speaker:
        """The synchronous speaker underneath."""
        return self._speaker

    def _forward(self, chunk: Chunk) -> None:
        loop, queue = self._loop, self._queue
        if loop is not None and queue is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(queue.put_nowait, chunk)

    async def __aenter__(self) -> AsyncSpeaker:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> AsyncSpeaker:
        """Start the speaker (see :meth:`Speaker.start`); return self."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        await asyncio.to_thread(self._speaker.start)
        return self

    async def aclose(self, timeout: float = 2.0) -> None:
        """Stop and close (see :meth:`Speaker.close`); idempotent."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._speaker.close, timeout)
        if self._queue is not None:
            self._queue.put_nowait(_END)

    def speak(self, text: TextInput) -> AsyncSpeechHandle:
        """Speak text or a (async) stream of text pieces; return at once.

        An async iterable is consumed by a task on the running loop.
        """
        if not isinstance(text, AsyncIterable):
            return AsyncSpeechHandle(self._speaker.speak(text))
        utterance = self._speaker._open_utterance()
        task = asyncio.get_running_loop().create_task(self._pump(utterance, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return AsyncSpeechHandle(utterance.handle, task)

    async def _pump(self, utterance: Utterance, source: AsyncIterable[str]) -> None:
        feed: Callable[[Utterance, str | None], bool] = self._speaker._feed
        try:
            async for piece in source:
                if not feed(utterance, piece):
                    return
            feed(utterance, None)
        except Exception as exc:
            self._speaker._fail_text(utterance, exc)

    async def say(self, text: TextInput, timeout: float | None = None) -> SpeechReport:
        """Speak and wait until delivered; return the report."""
        return await self.speak(text).wait(timeout)

    async def stop(self) -> SpeechReport:
        """Drop queued and in-flight speech; return what was delivered."""
        return await asyncio.to_thread(self._speaker.stop)

    async def chunks(self) -> AsyncIterator[Chunk]:
        """Yield audio chunks until ``aclose()`` (when no on_audio/sink was given)."""
        if not self._iterate:
            raise ConfigError("chunks() needs the default sink (no on_audio= or sink=)")
        if self._queue is None:
            raise LifecycleError("start the speaker before iterating its chunks")
        while True:
            chunk = await self._queue.get()
            if chunk is _END:
                return
            yield chunk
