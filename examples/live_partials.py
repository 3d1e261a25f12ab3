"""Live text from pushed audio: partial text while someone speaks (stable words, then the
words that may still change, in brackets) and the final text when they stop.

A telephone bridge or a network stream would call ``feed_audio`` the same way; here the
recording shipped with harken is pushed at real-time pace in 20 ms chunks.

    python examples/live_partials.py [path/to/16k-mono.wav]
"""

from __future__ import annotations

import sys
import time
import wave

import numpy as np

from harken import Recorder
from harken.cli.main import sample_path


def read_wav(path: str) -> tuple[np.ndarray, int]:
    with wave.open(path, "rb") as handle:
        if handle.getsampwidth() != 2:
            raise SystemExit(f"{path}: this example reads 16-bit WAV files only")
        rate, channels = handle.getframerate(), handle.getnchannels()
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
    return pcm.reshape(-1, channels), rate


def main() -> None:
    audio, rate = read_wav(sys.argv[1] if len(sys.argv) > 1 else str(sample_path()))
    chunk = rate // 50  # 20 ms
    with Recorder(source="push",
                  on_partial=lambda stable, unstable: print(f"  ... {stable} [{unstable}]"),
                  on_final=lambda text: print(f"FINAL {text}")) as rec:
        started = time.monotonic()
        for i in range(0, len(audio), chunk):
            rec.feed_audio(audio[i:i + chunk], sample_rate=rate)
            time.sleep(max(0.0, started + (i + chunk) / rate - time.monotonic()))
        rec.flush()  # the end of the stream: transcribe what is left, wait for its final


if __name__ == "__main__":
    main()
