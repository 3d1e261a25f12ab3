"""The agent's voice on a call: text pieces in, 8 kHz int16 audio out, sentence by sentence.

A reply is cut into sentences (:class:`SentenceCutter`, pure) as its pieces arrive, so an
LLM's tokens start being spoken when the first sentence is complete; each sentence becomes
audio through a :class:`PhoneVoice`. The call keeps which sentence owns which samples, which
is how it knows what the caller heard when it barges in.

:class:`EspeakVoice` runs Debian's ``espeak-ng`` once per sentence (a few ms of CPU each),
in its own process, so no speech engine lives in the caller's process.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import wave
from collections.abc import AsyncIterator
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ..audio.resample import StreamResampler
from ..errors import BackendNotInstalled, PhoneError
from .wire import SAMPLE_RATE

__all__ = ["EspeakVoice", "PhoneVoice", "SentenceCutter"]

_END = re.compile(r"(?<=[.!?;:])[\"')\]]*\s+|\n+")
_MAX_SENTENCE = 240
"""Characters after which a sentence is cut at a comma or a space anyway."""


class SentenceCutter:
    """Collects text pieces and hands out whole sentences (pure; one per reply)."""

    def __init__(self) -> None:
        self._buffer = ""

    def push(self, piece: str) -> list[str]:
        """Add a piece; return the sentences it completed (stripped, non-empty)."""
        self._buffer += piece
        out: list[str] = []
        while True:
            match = _END.search(self._buffer)
            if match is None:
                break
            out.append(self._buffer[:match.start()])
            self._buffer = self._buffer[match.end():]
        while len(self._buffer) > _MAX_SENTENCE:
            cut = max(self._buffer.rfind(", ", 0, _MAX_SENTENCE),
                      self._buffer.rfind(" ", 0, _MAX_SENTENCE))
            cut = cut if cut > 0 else _MAX_SENTENCE
            out.append(self._buffer[:cut + 1])
            self._buffer = self._buffer[cut + 1:]
        return [s.strip() for s in out if s.strip()]

    def flush(self) -> list[str]:
        """The end of the reply: whatever is left, as a last sentence."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []


class PhoneVoice(Protocol):
    """Speech output for calls: shared by every call of an agent."""

    async def start(self) -> None:
        """Load or check the voice (raises what is missing)."""

    def sentence(self, text: str) -> AsyncIterator[NDArray[np.int16]]:
        """Audio of one sentence at 8 kHz, in one or more chunks, as it is made."""

    async def close(self) -> None:
        """Release what :meth:`start` took; idempotent."""


class EspeakVoice:
    """espeak-ng (Debian), one short-lived process per sentence.

    Args:
        voice: an espeak-ng voice name, e.g. "en-us".
        words_per_minute: speaking rate.
    """

    def __init__(self, voice: str = "en-us", words_per_minute: int = 165) -> None:
        self.voice = voice
        self.words_per_minute = words_per_minute
        self._exe: str | None = None

    async def start(self) -> None:
        """Find espeak-ng.

        Raises:
            BackendNotInstalled: it is not installed.
        """
        self._exe = shutil.which("espeak-ng")
        if self._exe is None:
            raise BackendNotInstalled("espeak-ng", "phone", "The espeak-ng phone voice")

    async def sentence(self, text: str) -> AsyncIterator[NDArray[np.int16]]:
        """Synthesise ``text``; yields its audio at 8 kHz.

        Raises:
            PhoneError: espeak-ng failed.
        """
        if self._exe is None:
            raise PhoneError("EspeakVoice.start() was not called")
        proc = await asyncio.create_subprocess_exec(
            self._exe, "--stdout", "-v", self.voice, "-s", str(self.words_per_minute), "--",
            text, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise PhoneError(f"espeak-ng failed (exit code {proc.returncode}): "
                             f"{err.decode(errors='replace').strip()[:200]}")
        yield _wav_to_8k(out)

    async def close(self) -> None:
        """Nothing to release (each sentence's process has ended)."""


def _wav_to_8k(data: bytes) -> NDArray[np.int16]:
    # espeak-ng --stdout writes a WAV whose length fields are unknown (0xFFFFFFFF): read the
    # header for the rate and take everything after the "data" chunk id.
    with wave.open(io.BytesIO(data[:44] + b"\x00" * 2), "rb") as head:
        rate = head.getframerate()
    start = data.find(b"data")
    pcm = np.frombuffer(data[start + 8:len(data) - (len(data) - start - 8) % 2], dtype="<i2")
    resampler = StreamResampler(rate, SAMPLE_RATE)
    samples = np.concatenate([resampler.process(pcm.astype(np.float32) / 32768.0),
                              resampler.flush()])
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
