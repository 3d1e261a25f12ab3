"""Shared set-up for the phone tests: caller audio from tests/data, baresip calls, waiting."""

from __future__ import annotations

import socket
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harken.phone.caller import BaresipCaller, baresip_available
from harken.phone.timeline import to_8k_int16

DATA = Path(__file__).parent.parent / "data"


def need_phone() -> None:
    """Skip the calling test with the reason when a part is truly missing."""
    reason = baresip_available()
    if reason is not None:
        pytest.skip(reason)
    pytest.importorskip("pjsua2", reason="the phone extra (pjsua2-python) is not installed")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clip(name: str) -> tuple[np.ndarray, str]:
    """A recording from tests/data at 8 kHz int16, and its transcript."""
    with wave.open(str(DATA / f"{name}.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        rate = w.getframerate()
    text = (DATA / f"{name}.txt").read_text().strip()
    return to_8k_int16(pcm.astype(np.float32) / 32768.0, rate), text


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 8000), dtype=np.int16)


def script(*parts: str | float) -> tuple[np.ndarray, list[str]]:
    """Caller audio from clip names and seconds of silence; returns (audio, transcripts)."""
    audio: list[np.ndarray] = []
    texts: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pcm, text = clip(part)
            audio.append(pcm)
            texts.append(text)
        else:
            audio.append(silence(part))
    return np.concatenate(audio), texts


def call(uri: str, audio: np.ndarray, workdir: Path, **kwargs: Any) -> BaresipCaller:
    caller = BaresipCaller(uri, audio, workdir, **kwargs)
    caller.start()
    return caller


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_call_over(caller: BaresipCaller, timeout: float) -> None:
    """Wait until baresip's call ended ("terminated", "session closed"), then stop it."""
    try:
        wait_for(lambda: "terminated" in caller.log or "session closed" in caller.log or
                 caller.wait(0) is not None, timeout,
                 "the call to end")
    finally:
        caller.close()


class Recorded:
    """Hooks that record what happened, per call id."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.ended: dict[int, Any] = {}
        self.barge: dict[int, str] = {}
        self.errors: list[tuple[BaseException, Any]] = []
        self.partials: list[str] = []
        self.dtmf: dict[int, list[str]] = {}

    def hooks(self) -> dict[str, Any]:
        return {"on_call_start": lambda c: self.started.append(c.id),
                "on_call_end": lambda c: self.ended.__setitem__(c.id, c),
                "on_barge_in": lambda c, heard: self.barge.__setitem__(c.id, heard),
                "on_error": lambda e, c: self.errors.append((e, c)),
                "on_dtmf": lambda c, digit: self.dtmf.setdefault(c.id, []).append(digit)}
