"""RealtimeSTT 1.1.2's README examples, read from its installed package metadata, run with
only the import line changed (``from harken.compat import AudioToTextRecorder``).

Their ``AudioToTextRecorder()`` asks for RealtimeSTT's default multilingual "tiny" model,
which harken does not embed; ``HARKEN_COMPAT_MODEL=tiny.en`` (set in the environment, not in
the program) stands in for it. The external-audio example gets real speech (the bundled
human recording) in its ``audio_chunk.pcm``; the microphone examples hear espeak played into
the PulseAudio virtual microphone in one short test.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.model

IMPORT = "from RealtimeSTT import AudioToTextRecorder"


def examples() -> dict[str, str]:
    """The README's Python examples by their section title, the import line replaced."""
    try:
        readme = importlib.metadata.metadata("RealtimeSTT").get_payload()  # type: ignore[attr-defined]
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("RealtimeSTT (--no-deps) is not installed")
    out = {}
    for title, code in re.findall(r"## ([^\n]+)\n(?:(?!\n## ).)*?```python\n(.*?)```", readme,
                                  re.S):
        assert code.count(IMPORT) == 1, title
        out[title] = code.replace(IMPORT, "from harken.compat import AudioToTextRecorder")
    assert set(out) == {"Microphone Example", "Automatic Recording Loop", "External Audio"}
    return out


def env() -> dict[str, str]:
    return dict(os.environ, HARKEN_COMPAT_MODEL="tiny.en")


def test_external_audio_example(tmp_path: Path) -> None:
    sample = Path(__file__).parents[2] / "src" / "harken" / "data" / "sample.wav"
    with wave.open(str(sample)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        pcm = w.readframes(w.getnframes())
    (tmp_path / "audio_chunk.pcm").write_bytes(pcm + bytes(2 * 16000 * 2))  # 2 s of silence
    (tmp_path / "example.py").write_text(examples()["External Audio"])
    out = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env(),
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "best of times" in out.stdout.lower(), out.stdout


def _recording_streams() -> int:
    out = subprocess.run(["pactl", "list", "short", "source-outputs"], capture_output=True,
                         text=True, timeout=10)
    return len(out.stdout.splitlines())


def _mic_reason() -> str | None:
    from test_microphone import _virtual_mic_reason  # type: ignore[import-not-found]

    return _virtual_mic_reason()


@pytest.mark.mic
def test_microphone_examples(tmp_path: Path, espeak: Any) -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
    try:
        reason = _mic_reason()
    finally:
        sys.path.pop(0)
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    code = examples()
    (tmp_path / "mic.py").write_text(code["Microphone Example"])
    (tmp_path / "loop.py").write_text(code["Automatic Recording Loop"])
    speech = np.concatenate([np.zeros(8000, np.float32),
                             espeak("Please send the report to the whole team."),
                             np.zeros(32000, np.float32)])
    wav = tmp_path / "speech.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((speech * 32767).astype("<i2").tobytes())
    before = _recording_streams()
    procs = [subprocess.Popen([sys.executable, "-u", name], cwd=tmp_path, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("mic.py", "loop.py")]
    try:
        mic, loop = procs
        assert mic.stdout is not None and mic.stdout.readline().strip() == "Speak now"
        # The recorders open the microphone on first use, after loading the model: wait
        # until PulseAudio has both recording streams.
        deadline = time.monotonic() + 120
        while _recording_streams() < before + 2:
            assert time.monotonic() < deadline, "the examples did not open the microphone"
            assert all(p.poll() is None for p in procs), [p.stderr.read() for p in procs
                                                          if p.stderr is not None]
            time.sleep(0.2)
        subprocess.run(["paplay", "--device=harken_null", str(wav)], check=True, timeout=60)
        mic_out, mic_err = mic.communicate(timeout=60)
        assert mic.returncode == 0, mic_err[-3000:]
        assert "report" in mic_out.lower(), mic_out
        assert loop.stdout is not None
        line = loop.stdout.readline()  # process_text's print
        assert "report" in line.lower(), line
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # the loop example runs until interrupted
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
