"""The scripts in examples/ run and say what they promise (real model, real speech)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harken.testing import word_errors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE_WORDS = "it was the best of times it was the worst of times"

pytestmark = pytest.mark.model


def run(name: str, *args: str, timeout: float = 180) -> str:
    out = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def starts_like_the_sample(text: str) -> bool:
    """The sample's first sentence is in ``text`` (at most 2 words off)."""
    words = text.lower().replace(",", " ").replace(".", " ").split()
    n = len(SAMPLE_WORDS.split())
    return any(word_errors(SAMPLE_WORDS, " ".join(words[i:i + n]))[0] <= 2
               for i in range(max(1, len(words) - n + 1)))


def test_transcribe_file_example() -> None:
    lines = run("transcribe_file.py").splitlines()
    assert len(lines) >= 3 and all(line.startswith("[") for line in lines), lines
    assert starts_like_the_sample(" ".join(lines)), lines


def test_live_partials_example() -> None:
    lines = run("live_partials.py").splitlines()
    finals = [line[len("FINAL "):] for line in lines if line.startswith("FINAL ")]
    partials = [line for line in lines if line.startswith("  ... ")]
    assert len(finals) >= 3 and partials, lines
    assert starts_like_the_sample(" ".join(finals)), finals


def test_openai_client_example() -> None:
    pytest.importorskip("openai")
    from harken.server.app import BackgroundServer, ServerConfig

    with BackgroundServer(ServerConfig(port=0)) as server:
        lines = run("openai_client.py", "", server.url).splitlines()
    assert len(lines) >= 3 and starts_like_the_sample(" ".join(lines)), lines


def test_speak_example(tmp_path) -> None:
    import wave

    out = tmp_path / "speak.wav"
    lines = run("speak.py", str(out), "--engine", "tone").splitlines()
    assert lines[0] == "said: Hello! This is harken speaking. (1.00 s)", lines
    assert lines[1].startswith("streamed: Each sentence is spoken as soon as it is complete,")
    assert lines[2].startswith("stopped; the caller heard: 'Your order shipped")
    with wave.open(str(out)) as w:
        assert w.getframerate() == 16000 and w.getnframes() > 16000 * 4


def test_phone_echo_example_calls_itself(tmp_path) -> None:
    from harken.phone.caller import baresip_available

    if baresip_available() is not None:
        pytest.skip(baresip_available())
    pytest.importorskip("pjsua2", reason="the phone extra is not installed")
    from phone_helpers import free_udp_port

    port = free_udp_port()
    out = run("phone_echo.py", "--call-yourself", "--listen", f"127.0.0.1:{port}",
              "--heard", str(tmp_path / "heard.wav"))
    turns = [line for line in out.splitlines() if " turns: " in line]
    replies = [line for line in out.splitlines() if " replies: " in line]
    assert turns and replies, out
    assert starts_like_the_sample(turns[0]), out
    assert (tmp_path / "heard.wav").stat().st_size > 8000 * 2 * 3  # > 3 s heard
