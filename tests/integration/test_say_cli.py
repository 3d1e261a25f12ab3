"""``harken say`` as a user runs it: a subprocess writing a WAV file."""

from __future__ import annotations

import subprocess
import sys
import time
import wave

import pytest


def harken(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harken", *args], stderr=subprocess.PIPE,
                            text=True, **kwargs)


def test_say_writes_a_wav_file(tmp_path) -> None:
    out = tmp_path / "hello.wav"
    proc = harken("say", "one two three", "-o", str(out), "--engine", "tone", "--rate",
                  "8000")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    with wave.open(str(out)) as w:
        assert w.getframerate() == 8000
        assert abs(w.getnframes() - 3 * 1600) <= 40
    assert "wrote" in err


def test_say_dash_speaks_each_line_as_it_arrives(tmp_path) -> None:
    out = tmp_path / "lines.wav"
    proc = harken("say", "-", "-o", str(out), "--engine", "tone", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write("first line here\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not (out.exists() and out.stat().st_size >= 44 + 3 * 3200 * 2):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
        time.sleep(0.05)  # the first line was spoken while stdin is still open
    _, err = proc.communicate("and a second\n", timeout=30)
    assert proc.returncode == 0, err
    with wave.open(str(out)) as w:
        assert w.getnframes() == 6 * 3200


@pytest.mark.parametrize("args,message", [
    (["--engine", "espeak", "--voice", "klingon"], "installed voices"),
    (["--engine", "tone", "--rate", "44100"], "sample_rate"),
])
def test_say_reports_bad_settings_in_one_line(tmp_path, args, message) -> None:
    proc = harken("say", "hi", "-o", str(tmp_path / "x.wav"), *args)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert message in err and "Traceback" not in err
