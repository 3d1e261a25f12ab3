"""``harken client --mic`` as users run it: a real process recording the virtual microphone.

A real server on 127.0.0.1 (a "harken-server" thread); the client is ``python -m harken
client --mic`` in its own process, recording the PulseAudio virtual microphone (started by
``.ci/virtual-mic``, see tests/integration/test_microphone.py) into which espeak speech is
played with ``paplay``. Ctrl+C (SIGINT) must end the stream gracefully: the final of what
was said, then "stopped", exit status 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_microphone import SINK, _virtual_mic_reason, _write_wav

from harken.config import EngineConfig, VadConfig
from harken.server.app import BackgroundServer, ServerConfig

SENTENCE = "Please send the report to the whole team before Friday."


@pytest.fixture(scope="module")
def virtual_mic() -> None:
    reason = _virtual_mic_reason()
    if reason is not None:
        if os.environ.get("CI"):  # CI starts the virtual microphone: never skip there
            pytest.fail(reason)
        pytest.skip(reason)


@contextmanager
def mic_client(url: str, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """``harken client --mic --json``, ready to record when this yields."""
    proc = subprocess.Popen([sys.executable, "-m", "harken", "client", "--mic", "--json",
                             "--url", url, *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and "press Ctrl+C" not in line:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                raise AssertionError(f"the client exited: {proc.communicate()}")
        assert "press Ctrl+C" in line, line
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, list[dict[str, Any]], str]:
    """Ctrl+C; the exit status, the JSON messages printed and stderr."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, [json.loads(x) for x in out.splitlines()], err


def play(wav: Path) -> None:
    subprocess.run(["paplay", f"--device={SINK}", str(wav)], check=True, timeout=60,
                   capture_output=True)


@pytest.fixture(scope="module")
def speech(espeak: Callable[..., np.ndarray],
           tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The sentence followed by 1 s of silence; the file and the speech's length in s."""
    audio = espeak(SENTENCE)
    wav = tmp_path_factory.mktemp("mic") / "speech.wav"
    _write_wav(wav, np.concatenate([audio, np.zeros(16000, np.float32)]))
    return wav, audio.size / 16000


def wait_for_final(server: BackgroundServer, timeout: float) -> None:
    """Until the server has sent a final (its stats), or ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.call(lambda: server.server.stats.finals_sent) > 0:
            return
        time.sleep(0.1)


def test_client_mic_streams_until_ctrl_c(virtual_mic, speech):
    wav, speech_s = speech
    cfg = ServerConfig(port=0, engine=EngineConfig(engine="scripted"),
                       vad=VadConfig(backend="energy"), token="mic-token")
    with BackgroundServer(cfg) as srv, \
            mic_client(srv.ws_url, "--token", "mic-token") as proc:
        play(wav)
        wait_for_final(srv, 10)
        status, messages, err = interrupt(proc)
    assert status == 0, err
    types = [m["type"] for m in messages]
    assert types[0] == "ready" and types[-1] == "stopped", types
    assert "error" not in types, messages
    finals = [m for m in messages if m["type"] == "final"]
    assert len(finals) == 1, finals
    # The scripted engine describes what it got: the whole sentence, at the right rate.
    words = finals[0]["text"].split()
    assert words[0] == "speech" and speech_s - 0.3 < float(words[1]) < speech_s + 1.0, finals


def test_client_mic_without_the_token_is_refused():
    cfg = ServerConfig(port=0, engine=EngineConfig(engine="scripted"),
                       vad=VadConfig(backend="energy"), token="mic-token")
    with BackgroundServer(cfg) as srv:
        out = subprocess.run([sys.executable, "-m", "harken", "client", "--mic", "--url",
                              srv.ws_url], capture_output=True, text=True, timeout=30,
                             env={**os.environ, "HARKEN_TOKEN": ""})
    assert out.returncode == 1
    assert "needs a token" in out.stderr, out.stderr


def test_client_needs_a_file_or_mic(tmp_path):
    none = subprocess.run([sys.executable, "-m", "harken", "client"], capture_output=True,
                          text=True, timeout=30)
    both = subprocess.run([sys.executable, "-m", "harken", "client", "--mic",
                           str(tmp_path / "a.wav")], capture_output=True, text=True,
                          timeout=30)
    for out in (none, both):
        assert out.returncode == 2 and "file or --mic" in out.stderr, out.stderr


@pytest.mark.model
def test_client_mic_with_the_real_model(virtual_mic, speech):
    wav, _ = speech
    with BackgroundServer(ServerConfig(port=0)) as srv, mic_client(srv.ws_url) as proc:
        play(wav)
        wait_for_final(srv, 20)
        status, messages, err = interrupt(proc)
    assert status == 0, err
    text = " ".join(m["text"] for m in messages if m["type"] == "final")
    assert "report" in text.lower() and "friday" in text.lower(), text
