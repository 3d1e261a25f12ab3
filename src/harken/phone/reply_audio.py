"""How a reply's text is cut into pieces for the voice, and its audio trimmed for the call.

A voice that makes a piece's audio at once (Piper) starts speaking sooner when the reply's
long first sentence is cut into growing pieces (:func:`first_pieces`); the pieces after the
first are made while the first plays (:func:`collect` / :func:`drain` carry their audio).
The silence a voice puts around each piece is dead air on a call: :func:`lead_in` and
:func:`quiet_tail` find it in int16 audio at the call's rate
(:data:`~harken.phone.wire.SAMPLE_RATE`). Pure functions, apart from the two coroutines.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from .wire import SAMPLE_RATE

__all__ = ["FIRST_WORDS", "JOIN_KEEP", "collect", "drain", "first_pieces", "lead_in",
           "quiet_tail"]

FIRST_WORDS = 5
"""Words in the first piece of a reply whose first sentence is at least twice as long.
Piper's first audio of 3 words came ~90 ms sooner than of 5 (100-260 ms against 200-350
ms on the loaded 2-core box), but tiny.en read baresip's recording of a 3-word first piece
worse (a said-alone "Unless to be." heard as "I'm less to be"; the model test's 0.35 WER
failed 2 of 8 runs)."""
_LEAD_POWER = (32768.0 * 10 ** (-50 / 20)) ** 2
"""Mean square of a 10 ms window of the voice's audio above which it is sound (-50 dBFS)."""
_LEAD_KEEP = SAMPLE_RATE // 100
"""Samples (10 ms) of silence kept before a reply's first sound."""
JOIN_KEEP = SAMPLE_RATE * 40 // 1000
"""Samples (40 ms) of silence kept where a long first sentence was cut into pieces."""
_WINDOW = SAMPLE_RATE // 100
"""Samples (10 ms) in which the voice's level is judged."""


def first_pieces(text: str, first: bool) -> list[str]:
    """Split a reply's long first sentence into pieces of FIRST_WORDS words, then twice
    that, and so on while the rest is at least twice the next piece: a voice that makes a
    piece's audio at once (Piper) starts speaking sooner, and each piece is made while the
    one before it plays (a long rest after 3 words came late under load).
    """
    words = text.split()
    if not first or len(words) < 2 * FIRST_WORDS:
        return [text]
    pieces: list[str] = []
    size = FIRST_WORDS
    while len(words) >= 2 * size:
        pieces.append(" ".join(words[:size]))
        words = words[size:]
        size *= 2
    return [*pieces, " ".join(words)]


async def collect(source: AsyncIterator[np.ndarray],
                  chunks: asyncio.Queue[np.ndarray | None]) -> None:
    """Put ``source``'s chunks on ``chunks``, then None (also when it fails)."""
    try:
        async for chunk in source:
            chunks.put_nowait(chunk)
    finally:
        chunks.put_nowait(None)


async def drain(chunks: asyncio.Queue[np.ndarray | None],
                task: asyncio.Task[None]) -> AsyncIterator[np.ndarray]:
    """The chunks :func:`collect` puts on ``chunks``; then raises what its task raised."""
    while (chunk := await chunks.get()) is not None:
        yield chunk
    await task


def _loud_windows(audio: np.ndarray) -> np.ndarray:
    """Indexes of the 10 ms windows of int16 ``audio`` above -50 dBFS (a last partial
    window is left out).
    """
    n = len(audio) // _WINDOW
    x = audio[:n * _WINDOW].astype(np.float32).reshape(n, _WINDOW)
    return np.flatnonzero(np.mean(x * x, axis=1) > _LEAD_POWER)


def lead_in(audio: np.ndarray) -> int:
    """Samples of silence to drop before the first sound of a reply (a voice such as Piper
    starts each sentence with 50-90 ms of it, which the caller would wait through): all
    but _LEAD_KEEP before the first 10 ms window above -50 dBFS; 0 when none is that loud.
    """
    loud = _loud_windows(audio)
    return max(0, int(loud[0]) * _WINDOW - _LEAD_KEEP) if len(loud) else 0


def quiet_tail(audio: np.ndarray) -> int:
    """Samples after the last 10 ms window of ``audio`` above -50 dBFS (all of it when
    none is; Piper ends each sentence with 100-250 ms of silence).
    """
    loud = _loud_windows(audio)
    return len(audio) - (int(loud[-1]) + 1) * _WINDOW if len(loud) else len(audio)
