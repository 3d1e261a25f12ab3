"""What the server tests share: a real server on 127.0.0.1:0 and the audio they stream.

The server runs the real engine process with the scripted engine (its text describes the
audio it got) and the energy VAD, so a test needs no model and runs in seconds. Tests import
these names directly (``from server_helpers import ...``); pytest puts this folder on
``sys.path``.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

from harken.audio.convert import float32_to_pcm16
from harken.config import EngineConfig, RealtimeConfig, VadConfig
from harken.server.app import Server, ServerConfig

RATE = 16000
"""The rate of the helpers' audio unless a test asks for another, in Hz."""


def tone(seconds: float, rate: int = RATE, amp: float = 0.3) -> np.ndarray:
    """A 220 Hz sine of ``seconds`` s at ``rate`` Hz (the energy VAD calls it speech)."""
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    """``seconds`` s of zeros at ``rate`` Hz."""
    return np.zeros(int(seconds * rate), np.float32)


def bursts(n: int, rate: int = RATE, lead_s: float = 0.3) -> np.ndarray:
    """``lead_s`` s of silence, then n bursts of 1 s tone, each followed by 0.8 s of silence."""
    parts = [silence(lead_s, rate)]
    for _ in range(n):
        parts += [tone(1.0, rate), silence(0.8, rate)]
    return np.concatenate(parts)


def write_wav(path: Path, audio: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    """Write float32 audio (interleaved if ``channels`` > 1) as a 16-bit WAV; return path."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(float32_to_pcm16(audio)))
    return path


def config(**kw: Any) -> ServerConfig:
    """A server on a free port with one scripted engine and the energy VAD; ``kw`` override."""
    kw.setdefault("engine", EngineConfig(engine="scripted"))
    kw.setdefault("vad", VadConfig(backend="energy"))
    # The test bursts are short: let every partial pass vote for stable words.
    kw.setdefault("realtime", RealtimeConfig(stable_min_ms=0))
    # One engine unless a test asks for a pool: these tests pin what one engine's crash, queue
    # and restart do (the pool has its own tests; the real-model servers use the default).
    kw.setdefault("engines", 1)
    return ServerConfig(port=0, **kw)


def run(body: Callable[[Server], Awaitable[None]], **kw: Any) -> None:
    """Start a :class:`Server` with ``config(**kw)``, await ``body(server)``, close it."""

    async def main() -> None:
        async with Server(config(**kw)) as server:
            await body(server)

    asyncio.run(main())


def ws_base(server: Server) -> str:
    """``ws://host:port`` of a running server."""
    return server.url.replace("http://", "ws://")
