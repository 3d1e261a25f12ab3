"""MicrophoneSource end to end through PortAudio, recording from the virtual microphone.

Needs the PulseAudio null sink "harken_null" whose monitor is the default source: run
``.ci/virtual-mic`` first (before pytest: ALSA decides at PortAudio start-up whether its
default device is PulseAudio). espeak speech is played into the sink with ``paplay`` and
must come out of the microphone source at 16 kHz.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harken.audio import float32_to_pcm16
from harken.sources import MicrophoneSource

pytestmark = pytest.mark.mic

SINK = "harken_null"
FRAME = 320  # 20 ms at 16 kHz


def _virtual_mic_reason() -> str | None:
    """Why the virtual microphone cannot be used here, or None when it can."""
    for tool in ("pactl", "paplay"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (apt-get install pulseaudio-utils)"
    try:
        info = subprocess.run(["pactl", "info"], capture_output=True, text=True, timeout=10)
        sinks = subprocess.run(["pactl", "list", "short", "sinks"], capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pactl failed: {exc}"
    if info.returncode != 0:
        return "no PulseAudio server is reachable; start the virtual microphone: .ci/virtual-mic"
    if SINK not in sinks.stdout.split():
        return f"PulseAudio has no '{SINK}' sink; start the virtual microphone: .ci/virtual-mic"
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"sounddevice/PortAudio is not usable: {exc}"
    return None


@pytest.fixture(scope="module")
def virtual_mic() -> None:
    reason = _virtual_mic_reason()
    if reason is not None:
        if os.environ.get("CI"):  # CI starts the virtual microphone: never skip there
            pytest.fail(reason)
        pytest.skip(reason)


class RecordingSink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.parts: list[np.ndarray] = []
        self.errors: list[BaseException] = []
        self.samples = 0

    def write(self, samples: np.ndarray) -> None:
        with self.lock:
            self.parts.append(samples.copy())
            self.samples += samples.size

    def end(self) -> None:
        pass

    def error(self, exc: BaseException) -> None:
        self.errors.append(exc)

    def audio(self) -> np.ndarray:
        with self.lock:
            return np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)


def _envelope(x: np.ndarray) -> np.ndarray:
    n = x.size // FRAME
    return np.sqrt(np.mean(x[: n * FRAME].reshape(n, FRAME) ** 2, axis=1))


def _wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_microphone_records_speech_played_into_the_virtual_mic(
        virtual_mic: None, espeak: Callable[..., np.ndarray], tmp_path: Path) -> None:
    speech = espeak("Testing the microphone. One, two, three, four.")
    wav = tmp_path / "speech.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(float32_to_pcm16(speech))

    sink = RecordingSink()
    source = MicrophoneSource(block_ms=20)
    source.start(sink)
    try:
        assert source.device_info is not None
        # the stream is live: silence arrives before anything is played
        assert _wait_for(lambda: sink.samples >= 8000, 10), "no audio from the microphone"
        lead = sink.samples
        subprocess.run(["paplay", f"--device={SINK}", str(wav)], check=True, timeout=60,
                       capture_output=True)
        # paplay returns when its buffer is drained; leave room for the capture latency
        target = lead + speech.size + 16000
        assert _wait_for(lambda: sink.samples >= target, 20), (
            f"expected {target} samples, got {sink.samples}")
    finally:
        source.close()
    assert not sink.errors, sink.errors
    got = sink.audio()
    stats = (f"(device {source.device_info}, {source.dropped_blocks} blocks dropped, "
             f"{source.status_events} PortAudio status flags; is something else playing "
             f"into {SINK}?)")

    # Silence before the speech was played.
    assert np.max(np.abs(got[: lead - 1600])) < 0.01, f"noise before the speech {stats}"

    # Find where the speech landed by cross-correlating the energy envelopes, then
    # compare the waveforms there.
    ref_env, got_env = _envelope(speech), _envelope(got)
    scores = np.correlate(got_env - got_env.mean(), ref_env - ref_env.mean(), mode="valid")
    offset = int(np.argmax(scores)) * FRAME
    assert offset >= lead - 3200, f"the speech came before it was played {stats}"
    aligned_env = _envelope(got[offset: offset + speech.size])
    env_corr = np.corrcoef(aligned_env, ref_env[: aligned_env.size])[0, 1]
    assert env_corr > 0.9, f"energy envelope correlation {env_corr:.3f} {stats}"

    # Sample-accurate alignment within +-1 frame, then the waveform itself.
    window = got[max(0, offset - FRAME): offset + speech.size + FRAME]
    xcorr = np.correlate(window, speech, mode="valid")
    best = int(np.argmax(np.abs(xcorr)))
    segment = window[best: best + speech.size]
    wave_corr = abs(np.corrcoef(segment, speech[: segment.size])[0, 1])
    assert wave_corr > 0.8, f"waveform correlation {wave_corr:.3f} {stats}"

    # As loud as what was played (PulseAudio at 100% volume), and as long.
    loud_ref = np.sum(ref_env > 0.02) * FRAME / 16000
    loud_got = np.sum(_envelope(got) > 0.02) * FRAME / 16000
    assert loud_got == pytest.approx(loud_ref, rel=0.15), f"loud for {loud_got} s {stats}"
    assert np.max(np.abs(segment)) == pytest.approx(np.max(np.abs(speech)), rel=0.2), stats


def _write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(float32_to_pcm16(audio))


@pytest.mark.model
def test_recorder_listens_to_the_microphone_end_to_end(
        virtual_mic: None, espeak: Callable[..., np.ndarray], tmp_path: Path) -> None:
    """The README's first example: Recorder() on the microphone, real VAD and model."""
    from harken import Recorder, SpeechStarted

    wav = tmp_path / "speech.wav"
    _write_wav(wav, np.concatenate([espeak("The quick brown fox jumps over the lazy dog."),
                                    np.zeros(16000, np.float32)]))
    events: list[object] = []
    with Recorder(on_event=events.append) as rec:
        subprocess.run(["paplay", f"--device={SINK}", str(wav)], check=True, timeout=60,
                       capture_output=True)
        text = rec.text(timeout=60)
    assert "lazy" in text.lower(), text
    assert any(isinstance(e, SpeechStarted) for e in events)
