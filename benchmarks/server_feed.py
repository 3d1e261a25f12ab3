"""The server's own CPU per telephone stream: decode, resample, VAD and segmentation.

What one ``harken serve`` session costs on the event loop for each message a telephone
client sends, without the network, JSON or the engine: the short human recordings of
tests/data at 8 kHz (as ``server_clients.py --telephone`` sends them: 3 per stream, 1.5 s of
silence after each), 20 ms PCM16 messages through :func:`~harken.audio.convert.to_float32_mono`,
the session's :class:`~harken.audio.resample.StreamResampler` and a
:class:`~harken.core.pipeline.SpeechPipeline` with the server's default VAD
(WebRTC + Silero, one shared Silero session as in the server) and realtime settings;
requests are dropped. Each source tree (this one, and ``--baseline-src DIR`` if given)
runs in its own process, rounds interleaved; prints CPU seconds per stream-second (the
server's share of a core per stream), the Silero runs per frame, and the ratio.

Usage: ``python benchmarks/server_feed.py [--streams 8] [--repeats 5] [--baseline-src DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def child(streams: int) -> dict[str, float]:
    """One round in this process (harken from sys.path): CPU s per stream-second."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from server_clients import PAD_S, TELEPHONE, telephone_clips

    from harken.audio.convert import to_float32_mono
    from harken.audio.resample import StreamResampler
    from harken.core.pipeline import SpeechPipeline
    from harken.server.config import ServerConfig
    from harken.server.vads import VadFactory

    config = ServerConfig()
    factory = VadFactory(config.vad)
    factory.load()
    clips, _ = telephone_clips()
    pause = np.zeros(int(PAD_S * TELEPHONE.rate), np.float32)
    messages = []
    for s in range(streams):
        audio = np.concatenate([part for k in range(3)
                                for part in (clips[(3 * s + k) % len(clips)], pause)])
        pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2").tobytes()
        step = 2 * TELEPHONE.chunk
        messages.append([pcm[i:i + step] for i in range(0, len(pcm), step)])
    vads = [factory.create() for _ in range(streams)]
    pipes = [SpeechPipeline(vad, config.vad, config.realtime) for vad in vads]
    resamplers = [StreamResampler(TELEPHONE.rate) for _ in range(streams)]
    cpu0 = time.process_time()
    for i in range(max(len(m) for m in messages)):  # interleaved, as the loop sees them
        for s in range(streams):
            if i < len(messages[s]):
                samples = to_float32_mono(messages[s][i], encoding="pcm16", channels=1)
                pipes[s].feed(resamplers[s].process(samples))
    cpu = time.process_time() - cpu0
    seconds = sum(len(b"".join(m)) / 2 / TELEPHONE.rate for m in messages)
    frames = sum(getattr(v, "frames", 0) for v in vads)
    silero = sum(getattr(v, "confirm_runs", 0) for v in vads)
    return {"cpu_per_stream_s": cpu / seconds, "silero_share": silero / max(1, frames)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline-src", type=Path, default=None)
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.streams)))
        return 0
    trees = {"this": ROOT / "src"}
    if args.baseline_src is not None:
        trees = {"baseline": args.baseline_src.resolve(), **trees}
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; {args.streams} telephone streams per round")
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for r in range(args.repeats):
        for name, src in trees.items():
            env = dict(os.environ, PYTHONPATH=str(src))
            out = subprocess.run([sys.executable, __file__, "--child", "--streams",
                                  str(args.streams)], env=env, capture_output=True, text=True,
                                 check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows[name].append(row)
            print(f"round {r + 1} {name:>8}: {row['cpu_per_stream_s'] * 1000:.2f} ms CPU per "
                  f"stream-second, Silero on {row['silero_share']:.0%} of frames", flush=True)
    med = {name: float(np.median([row["cpu_per_stream_s"] for row in got]))
           for name, got in rows.items()}
    for name, value in med.items():
        print(f"median {name:>8}: {value * 1000:.2f} ms CPU per stream-second "
              f"({value * 32:.0%} of a core for 32 streams)")
    if "baseline" in med:
        print(f"this / baseline: {med['this'] / med['baseline']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
