"""The asyncio facade: the same recorder, with awaitable methods and async iterators.

Blocking work (engine start, backpressured feeding, close) runs in the default executor;
events reach the event loop through ``loop.call_soon_threadsafe``, so no coroutine ever
blocks the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from .config import SAMPLE_RATE, RecorderConfig
from .errors import LifecycleError
from .events import ErrorEvent, Event, FinalTranscript, RecorderState, StateChanged
from .recorder import Recorder
from .sources.base import AudioSource

__all__ = ["AsyncRecorder"]

_CLOSED = object()


class AsyncRecorder:
    """Async twin of :class:`~harken.recorder.Recorder`.

    Usage::

        async with AsyncRecorder(source="push") as rec:
            await rec.feed_audio(chunk, 8000)
            async for final in rec.transcripts():
                print(final.text)

    Args:
        config, source, settings: as for :class:`Recorder`. Callbacks (``on_final=...``)
            may be given too; they run on the recorder's dispatch thread, not the loop.
        max_events: events buffered for :meth:`events` / :meth:`transcripts` readers.
    """

    def __init__(self, config: RecorderConfig | None = None, *,
                 source: AudioSource | str | Path = "mic", max_events: int = 10_000,
                 **settings: Any) -> None:
        self._recorder = Recorder(config, source=source, **settings)
        self._max_events = max_events
        self._subscribers: list[asyncio.Queue[Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def recorder(self) -> Recorder:
        """The underlying synchronous recorder."""
        return self._recorder

    async def __aenter__(self) -> AsyncRecorder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the recorder without blocking the event loop."""
        self._loop = asyncio.get_running_loop()
        await self._loop.run_in_executor(None, self._recorder.start)
        self._recorder.subscribe(self._on_event)

    async def aclose(self, *, flush: bool = True) -> None:
        """Close the recorder; pending finals are delivered first when ``flush``."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: self._recorder.close(flush=flush))
        for q in list(self._subscribers):
            q.put_nowait(_CLOSED)

    async def feed_audio(self, chunk: NDArray[Any] | bytes, sample_rate: int = SAMPLE_RATE,
                         *, encoding: str | None = None, channels: int = 1) -> None:
        """Push audio; waits (without blocking the loop) when the backlog is full."""
        rec = self._recorder
        if rec.state is not RecorderState.RUNNING or rec.source is None:
            rec.feed_audio(chunk, sample_rate, encoding=encoding, channels=channels)
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, lambda: rec.feed_audio(chunk, sample_rate, encoding=encoding,
                                         channels=channels))

    async def flush(self, timeout: float | None = None) -> None:
        """Transcribe the utterance in progress and wait for every pending final."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: self._recorder.flush(timeout))

    async def events(self) -> AsyncIterator[Event]:
        """Yield every event from now until the recorder closes."""
        if self._loop is None:
            raise LifecycleError("events() needs a started AsyncRecorder")
        q: asyncio.Queue[Any] = asyncio.Queue(self._max_events)
        self._subscribers.append(q)
        try:
            while True:
                item = await q.get()
                if item is _CLOSED:
                    return
                yield item
        finally:
            self._subscribers.remove(q)

    async def transcripts(self) -> AsyncIterator[FinalTranscript]:
        """Yield final transcripts until the recorder closes; raises fatal errors."""
        async for event in self.events():
            if isinstance(event, FinalTranscript):
                yield event
            elif isinstance(event, ErrorEvent) and event.fatal:
                raise event.error

    async def text(self, timeout: float | None = None) -> str:
        """Wait for the next final transcript not yet taken and return its text.

        Shares the queue of :meth:`Recorder.text`: finals that arrived before the call are
        returned first.
        """
        loop = asyncio.get_running_loop()
        final = await loop.run_in_executor(None, self._recorder.next_final, timeout)
        return final.text

    def _on_event(self, event: Event) -> None:
        # Runs on the recorder's dispatch thread.
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        closed = isinstance(event, StateChanged) and event.state is RecorderState.CLOSED
        loop.call_soon_threadsafe(self._fan_out, event, closed)

    def _fan_out(self, event: Event, closed: bool) -> None:
        for q in self._subscribers:
            if q.full():
                continue  # a reader that does not read loses events, never blocks others
            q.put_nowait(event)
            if closed and not q.full():
                q.put_nowait(_CLOSED)
