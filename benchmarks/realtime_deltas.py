"""How early transcript text reaches an OpenAI Realtime client, and whether its deltas add up.

One ``harken serve``-style server in this process (real tiny.en, real VAD, port 0 on
127.0.0.1) and the official ``openai`` package as the client
(``client.realtime.connect(extra_query={"intent": "transcription"})``, server VAD,
pcm16 at 16 kHz). The audio is :mod:`latency`'s stream (the tests/data recordings with short
inner pauses and espeak-ng sentences, 1.5 s of silence around each), sent at real-time pace
in 50 ms appends. ``t`` is wall time since the first append, so audio time ``s`` is sent at
``t = s``.

Per clip (its items, usually one):

- first delta: ``t`` of the first ``...transcription.delta`` minus the clip's true start of
  speech (its first loud 10 ms frame, :func:`latency.speech_bounds`); p50/p95;
- end of speech -> completed: ``t`` of its last ``...transcription.completed`` minus the
  true end of speech; p50/p95;
- early text: the share of the transcript's characters whose delta arrived at least 100 ms
  before its item's ``completed`` (finals only: 0), and the character-weighted mean of how
  much earlier than ``completed`` each character arrived, in seconds;
- adds up: items whose deltas concatenate to the completed transcript;
- WER of the completed transcripts against the truth (the recordings' transcripts, the
  espeak sentences).

Rows: each ``--row`` is one server run over the same stream with fields of the server's
default ``RealtimeConfig`` changed (``key=value`` pairs, comma-separated; ``--row ""`` is the
server's defaults; ``--row stable_prefix=false,partial_beam_size=1`` holds the stable words
until the final), one after the other
in this process, so their numbers compare as ratios on a shared machine. Before/after: run it
with ``PYTHONPATH`` pointing at each harken tree (it prints the tree it imported).

Usage:
    python benchmarks/realtime_deltas.py [--quick] [--espeak 8]
        [--row "" --row stable_prefix=true --row pause_pieces_ms=1000 ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import latency  # noqa: E402
from machine_info import machine  # noqa: E402

import harken  # noqa: E402
from harken.config import RealtimeConfig, VadConfig  # noqa: E402
from harken.server.app import Server  # noqa: E402

try:
    from harken.server.config import ServerConfig  # noqa: E402
except ImportError:  # a harken from before the server's config had its own module
    from harken.server.app import ServerConfig  # type: ignore[attr-defined,no-redef]  # noqa: E402
from harken.testing import word_errors  # noqa: E402

CHUNK_S = 0.05
DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"


async def run_stream(stream: np.ndarray, realtime: RealtimeConfig,
                     ) -> list[tuple[float, dict[str, Any]]]:
    """Serve, send the stream at real-time pace, return (t, event) for every event."""
    import openai

    cfg = ServerConfig(port=0, vad=VadConfig(), openai_realtime=realtime)
    events: list[tuple[float, dict[str, Any]]] = []
    async with Server(cfg) as server:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.recv_bytes()
            await conn.session.update(session={"type": "transcription", "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": latency.RATE},
                "transcription": {"model": "whisper-1", "language": "en"}}}})
            await conn.recv_bytes()
            step = int(CHUNK_S * latency.RATE)
            t0 = time.monotonic()

            async def send() -> None:
                import base64

                for n, i in enumerate(range(0, len(stream), step)):
                    delay = t0 + n * CHUNK_S - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await conn.input_audio_buffer.append(
                        audio=base64.b64encode(stream[i:i + step].tobytes()).decode())

            sender = asyncio.create_task(send())
            try:
                while True:
                    try:
                        async with asyncio.timeout(6.0 if sender.done() else 60.0):
                            data = await conn.recv_bytes()
                    except TimeoutError:
                        break  # the stream is sent and nothing came for 6 s
                    events.append((time.monotonic() - t0, json.loads(data)))
            finally:
                await sender
    return events


def score(utts: list[latency.Utterance],
          events: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """The per-clip metrics (see the module docstring)."""
    clip_of: dict[str, int] = {}
    for _, ev in events:
        if ev["type"] == "input_audio_buffer.speech_started":
            start = ev["audio_start_ms"] / 1000 + 0.45  # the item's audio has pre-roll
            clip_of[ev["item_id"]] = max([k for k, u in enumerate(utts) if u.offset <= start],
                                         default=0)
    first: dict[int, float] = {}
    done: dict[int, float] = {}
    texts: dict[int, list[str]] = {}
    deltas: dict[str, list[tuple[float, str]]] = {}
    adds_up = items = 0
    early_chars = total_chars = 0
    lead_weighted = 0.0
    for t, ev in events:
        item = ev.get("item_id")
        if item not in clip_of:
            continue
        k = clip_of[item]
        if ev["type"] == DELTA:
            first.setdefault(k, t)
            deltas.setdefault(item, []).append((t, ev["delta"]))
        elif ev["type"] == COMPLETED:
            done[k] = t
            texts.setdefault(k, []).append(ev["transcript"])
            items += 1
            mine = deltas.get(item, [])
            adds_up += "".join(d for _, d in mine) == ev["transcript"]
            total_chars += len(ev["transcript"])
            for td, d in mine:
                early_chars += len(d) if t - td >= 0.1 else 0
                lead_weighted += len(d) * (t - td)
    starts = {k: u.offset + latency.speech_bounds(u.audio)[0] for k, u in enumerate(utts)}
    first_lat = [first[k] - starts[k] for k in first]
    e2c = [done[k] - utts[k].speech_end for k in done]
    errors = words = 0
    for k, u in enumerate(utts):
        e, w = word_errors(u.truth, " ".join(texts.get(k, [])))
        errors, words = errors + e, words + w
    return {
        "clips": len(utts), "items": items, "adds_up": adds_up,
        "first_delta_p50": latency.percentile(first_lat, 50),
        "first_delta_p95": latency.percentile(first_lat, 95),
        "e2c_p50": latency.percentile(e2c, 50), "e2c_p95": latency.percentile(e2c, 95),
        "early_fraction": early_chars / total_chars if total_chars else 0.0,
        "lead_s": lead_weighted / total_chars if total_chars else 0.0,
        "wer_truth": errors / words if words else float("nan"),
    }


def parse_row(row: str) -> dict[str, Any]:
    """``"stable_prefix=true,stable_agreement=3"`` as RealtimeConfig keyword arguments."""
    fields: dict[str, Any] = {}
    for pair in filter(None, (p.strip() for p in row.split(","))):
        key, _, value = pair.partition("=")
        low = value.strip().lower()
        fields[key.strip()] = low == "true" if low in ("true", "false") else int(value)
    return fields


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="four recordings only")
    parser.add_argument("--espeak", type=int, default=8, help="espeak sentences (default 8)")
    parser.add_argument("--row", action="append", default=None,
                        help="RealtimeConfig fields of one run, key=value,... (repeatable; "
                             "default: one run with the defaults)")
    parser.add_argument("--json", type=Path, help="save the events and the scores here")
    args = parser.parse_args()
    print(machine())
    rows = args.row if args.row is not None else [""]
    print(f"harken from {Path(harken.__file__).resolve().parent}; openai client, server VAD, "
          "pcm16 16 kHz, real-time pace")
    utts = latency.load_utterances(args.quick, args.espeak)
    stream = latency.build_stream(utts)
    print(f"{len(utts)} clips, {len(stream) / latency.RATE:.1f} s of audio")
    print("| row | adds up | first delta p50 / p95 | end -> completed p50 / p95 | text early "
          "| mean lead | WER |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    base = ServerConfig().openai_realtime  # the endpoint's defaults; rows change fields of it
    saved: list[dict[str, Any]] = []
    for row in rows:
        events = asyncio.run(run_stream(stream, replace(base, **parse_row(row))))
        s = score(utts, events)
        print(f"| {row or 'server defaults'} | {s['adds_up']}/{s['items']} | "
              f"{s['first_delta_p50']:.2f} / {s['first_delta_p95']:.2f} s | "
              f"{s['e2c_p50']:.2f} / {s['e2c_p95']:.2f} s | {100 * s['early_fraction']:.0f}% | "
              f"{s['lead_s']:.2f} s | {100 * s['wer_truth']:.1f}% |", flush=True)
        saved.append({"row": row, "scores": s, "events": events})
    if args.json:
        args.json.write_text(json.dumps({"rows": saved}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
