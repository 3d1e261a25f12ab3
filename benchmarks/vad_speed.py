"""How much each VAD backend costs per 32 ms frame, and how often each calls noise speech.

Run: ``python benchmarks/vad_speed.py`` (needs webrtcvad-wheels, onnxruntime and a Silero
model file, e.g. from faster-whisper). Prints the machine, then per backend and signal the
median and 90th percentile time per 512-sample frame in microseconds, the share of frames
called speech, and for the gated backend the share of frames on which Silero ran.

Signals: the committed human recordings (tests/data, joined with 1 s pauses), quiet room
noise (-60 dBFS white), and loud white noise (-20 dBFS). Runs on the main thread only.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import wave
from pathlib import Path

import numpy as np

from harken.config import VadConfig
from harken.vad import FRAME_SAMPLES, create_vad
from harken.vad.gated import GatedVad

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
RATE = 16000


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def speech() -> np.ndarray:
    manifest = json.loads((DATA / "manifest.json").read_text())
    rng = np.random.default_rng(0)
    parts = []
    for name in manifest:
        with wave.open(str(DATA / f"{name}.wav")) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        parts += [(rng.standard_normal(RATE) * 1e-3).astype(np.float32),
                  pcm.astype(np.float32) / 32768.0]
    return np.concatenate(parts)


def white(dbfs: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(RATE * seconds)) * 10 ** (dbfs / 20)).astype(np.float32)


def frames_of(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME_SAMPLES
    return np.ascontiguousarray(x[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES))


def measure(backend: str, frames: np.ndarray) -> tuple[float, float, float, float | None]:
    vad = create_vad(VadConfig(backend=backend))
    vad.load()
    for f in frames[:20]:  # warm up (onnxruntime allocates on the first runs)
        vad.is_speech(f)
    vad.reset()
    times = np.empty(len(frames))
    hits = 0
    clock = time.perf_counter_ns
    for i, f in enumerate(frames):
        t0 = clock()
        hits += vad.is_speech(f)
        times[i] = clock() - t0
    share = vad.confirm_share if isinstance(vad, GatedVad) else None
    vad.close()
    return (float(np.median(times)) / 1000, float(np.percentile(times, 90)) / 1000,
            hits / len(frames), share)


def main() -> None:
    print(f"machine: {platform.platform()}; Python {platform.python_version()}")
    print(f"CPU: {cpu_name()}; {os.cpu_count()} logical cores")
    signals = {
        "human speech": frames_of(speech()),
        "quiet -60 dBFS": frames_of(white(-60.0, 20.0, 1)),
        "white -20 dBFS": frames_of(white(-20.0, 20.0, 2)),
    }
    for name, frames in signals.items():
        print(f"  {name}: {len(frames)} frames ({len(frames) * FRAME_SAMPLES / RATE:.1f} s)")
    print()
    print(f"{'backend':15s} {'signal':16s} {'median us':>10s} {'p90 us':>8s} "
          f"{'speech':>7s} {'silero ran':>10s}")
    for backend in ("energy", "webrtc", "silero", "webrtc+silero"):
        for name, frames in signals.items():
            median, p90, speech_share, silero = measure(backend, frames)
            ran = f"{silero:10.1%}" if silero is not None else f"{'':10s}"
            print(f"{backend:15s} {name:16s} {median:10.1f} {p90:8.1f} {speech_share:7.1%} {ran}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
