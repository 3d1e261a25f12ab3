"""The agent's voice on a call: text pieces in, 8 kHz int16 audio out, sentence by sentence.

A reply is cut into sentences and clauses (:class:`~harken.speak.cutter.TextCutter`) as its
pieces arrive, so an LLM's tokens start being spoken when the first clause is complete; each
becomes audio through a :class:`PhoneVoice`. The call keeps which sentence owns which samples, which
is how it knows what the caller heard when it barges in.

:class:`SpeakerVoice`, the default, is harken's speech engine program (Piper, espeak-ng or
the user's engine, in its own process) shared by every call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..audio.resample import StreamResampler
from .wire import SAMPLE_RATE

if TYPE_CHECKING:
    from ..speak.host import SpeechEngineHost

__all__ = ["PhoneVoice", "SpeakerVoice"]

class PhoneVoice(Protocol):
    """Speech output for calls: shared by every call of an agent."""

    async def start(self) -> None:
        """Load or check the voice (raises what is missing)."""

    def sentence(self, text: str) -> AsyncIterator[NDArray[np.int16]]:
        """Audio of one sentence (or clause) at 8 kHz, in one or more chunks, as it is made."""

    async def close(self) -> None:
        """Release what :meth:`start` took; idempotent."""


class SpeakerVoice:
    """harken's speech engine program (:class:`~harken.speak.host.SpeechEngineHost`), one
    for every call of an agent: sentences from all calls queue there, in order.

    The call's media clock (the SIP program) paces playback, so a sentence's audio is
    taken as fast as the engine makes it; a :class:`~harken.speak.speaker.Speaker` per
    call would add a second real-time clock and two threads per call. If the program dies
    mid-sentence it is restarted and says the sentence again; the samples already passed
    on are skipped, so the caller hears it once.

    Args:
        voice: the voice (None: the engine's default).
        engine: "piper", "espeak", "tone", "package.module:Class", or None for the best
            installed one (Piper with its voice package, else espeak-ng).
        options: engine options.
        host: a started host to share instead (its owner closes it).
        speed: speaking rate, 1.0 normal.

    Raises:
        ConfigError: an unknown engine or voice (the message lists the installed voices).
        BackendNotInstalled: the engine is not installed.
    """

    def __init__(self, voice: str | None = None, *, engine: str | None = None,
                 options: dict[str, Any] | None = None, host: SpeechEngineHost | None = None,
                 speed: float = 1.0) -> None:
        from ..speak.host import SpeechEngineHost

        self._own = host is None
        self.host = host if host is not None else SpeechEngineHost(
            voice, engine=engine, options=options)
        self.speed = speed

    async def start(self) -> None:
        """Start the engine program (loads the voice; blocks a worker thread, not the loop)."""
        if self._own:
            await asyncio.to_thread(self.host.start)

    async def sentence(self, text: str) -> AsyncIterator[NDArray[np.int16]]:
        """Synthesise ``text``; yields its audio at 8 kHz as the engine makes it.

        Raises:
            WorkerError, EngineError: the sentence failed for good.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        listener = _Listener(loop, queue)
        request_id = self.host.submit(text, listener, speed=self.speed)
        resampler = StreamResampler(self.host.sample_rate, SAMPLE_RATE)
        passed = 0  # engine samples passed on
        made = 0  # engine samples made by the current attempt
        try:
            while True:
                kind, value = await queue.get()
                if kind == "audio":
                    skip = max(0, min(len(value), passed - made))
                    made += len(value)
                    if skip < len(value):
                        passed += len(value) - skip
                        yield _int16(resampler.process(value[skip:]))
                elif kind == "restart":
                    made = 0
                elif kind == "done":
                    yield _int16(resampler.flush())
                    return
                else:
                    raise value
        finally:
            self.host.cancel(request_id)

    async def close(self) -> None:
        """Stop the engine program if this voice started it; idempotent."""
        if self._own:
            await asyncio.to_thread(self.host.close, 1.0)


class _Listener:
    """Hops the host's callbacks (its reader thread) onto the call's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 queue: asyncio.Queue[tuple[str, Any]]) -> None:
        self._loop = loop
        self._queue = queue

    def _put(self, kind: str, value: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop closed: the call is gone
            pass

    def on_audio(self, request_id: int, audio: NDArray[np.float32]) -> None:
        self._put("audio", audio)

    def on_done(self, request_id: int, samples: int) -> None:
        self._put("done", samples)

    def on_failed(self, request_id: int, error: BaseException) -> None:
        self._put("failed", error)

    def on_restart(self, request_id: int) -> None:
        self._put("restart", None)


def _int16(samples: NDArray[np.float32]) -> NDArray[np.int16]:
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
