"""Real clients streaming speech while hostile clients attack the same harken server.

Starts ``harken serve`` (embedded tiny.en, WebRTC+Silero VAD, every default) as its own
process. For each attack, 4 real WebSocket clients stream espeak-ng sentences at real-time
pace over harken's protocol (as ``benchmarks/server_clients.py`` does) while the attack runs
against the same server from this machine, over and over until the real clients finish:

- ``none``: no attack (the reference).
- ``flac-bomb``: 3 uploads at once of a 0.7 MB FLAC holding an hour of 48 kHz stereo
  silence (1.4 GB as float32) to ``POST /v1/audio/transcriptions``.
- ``squatters``: 40 WebSockets that connect and never send "start".
- ``rate-flip``: a RealtimeSTT data socket alternating 4 kHz and 384 kHz every frame.
- ``slowloris``: 200 connections sending their request headers a byte at a time.
- ``form-flood``: uploads whose form holds 5,000 small fields.
- ``foreign-origin``: WebSockets and uploads with ``Origin: http://evil.example``.
- ``nested-json``: 4 KB of nested JSON on harken's WebSocket.

Per attack it prints the real clients' **E2F** (wall time from sending the end of an
utterance's speech to receiving its final; p50 and p95 over the utterances of all 4
clients), their missed utterances and errors, the **peak RSS** of the server's process tree
(server and engine, sampled every 50 ms), and how many attack attempts the server
**refused** out of how many it saw. Target: E2F p95 < 1.5 s during every attack.

Usage: ``python benchmarks/hostile.py [--utterances 3] [--attacks flac-bomb,squatters]``
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from machine_info import machine  # noqa: E402
from server_clients import SENTENCES, STAGGER_S, build, pct, run_client  # noqa: E402

CLIENTS = 4


class Count:
    """Attack attempts the server saw and refused."""

    def __init__(self) -> None:
        self.tried = 0
        self.refused = 0


def flac_bomb() -> bytes:
    import soundfile

    buf = io.BytesIO()
    with soundfile.SoundFile(buf, "w", samplerate=48000, channels=2, format="FLAC",
                             subtype="PCM_16") as f:
        block = np.zeros((48000 * 60, 2), np.int16)
        for _ in range(60):
            f.write(block)
    return buf.getvalue()


def form(fields: list[tuple[str, str | bytes]]) -> tuple[bytes, str]:
    out = io.BytesIO()
    for name, value in fields:
        out.write(b"--bb\r\n")
        if isinstance(value, bytes):
            out.write(f'Content-Disposition: form-data; name="{name}"; filename="a"\r\n\r\n'
                      .encode() + value)
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode())
        out.write(b"\r\n")
    out.write(b"--bb--\r\n")
    return out.getvalue(), "multipart/form-data; boundary=bb"


async def post(http: str, body: bytes, ctype: str, count: Count,
               headers: dict[str, str] | None = None) -> None:
    import aiohttp

    count.tried += 1
    try:
        async with aiohttp.ClientSession() as session, session.post(
                http + "/v1/audio/transcriptions", data=body,
                headers={"Content-Type": ctype, **(headers or {})},
                timeout=aiohttp.ClientTimeout(total=600)) as resp:
            await resp.read()
            if resp.status >= 400:
                count.refused += 1
    except (aiohttp.ClientError, asyncio.TimeoutError):
        count.refused += 1


async def until(stop: asyncio.Event, attempt: Callable[[], Awaitable[None]],
                pause_s: float = 0.2) -> None:
    while not stop.is_set():
        await attempt()
        await asyncio.sleep(pause_s)


async def attack_flac_bomb(http: str, ws: str, stop: asyncio.Event, count: Count,
                           bomb: bytes) -> None:
    body, ctype = form([("file", bomb)])
    await asyncio.gather(*(until(stop, lambda: post(http, body, ctype, count))
                           for _ in range(3)))


async def attack_squatters(http: str, ws: str, stop: asyncio.Event, count: Count,
                           bomb: bytes) -> None:
    import websockets

    async def squat() -> None:
        while not stop.is_set():
            count.tried += 1
            try:
                async with websockets.connect(ws) as sock:
                    await asyncio.wait_for(sock.recv(), 30)  # the server's timeout error
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                pass
            count.refused += 1

    await asyncio.gather(*(squat() for _ in range(40)))


async def attack_rate_flip(http: str, ws: str, stop: asyncio.Event, count: Count,
                           bomb: bytes) -> None:
    import websockets

    url = ws.replace("/v1/stream", "/rtstt/data")
    while not stop.is_set():
        count.tried += 1
        try:
            async with websockets.connect(url) as sock:
                i = 0
                while not stop.is_set():
                    rate = 4000 if i % 2 else 384000
                    meta = json.dumps({"sampleRate": rate}).encode()
                    await sock.send(struct.pack("<I", len(meta)) + meta
                                    + bytes(2 * (rate // 50)))
                    i += 1
                    await asyncio.sleep(0)
        except (OSError, websockets.WebSocketException):
            count.refused += 1
        await asyncio.sleep(0.1)


async def attack_slowloris(http: str, ws: str, stop: asyncio.Event, count: Count,
                           bomb: bytes) -> None:
    host, port = http.removeprefix("http://").rsplit(":", 1)

    async def slow() -> None:
        while not stop.is_set():
            count.tried += 1
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                count.refused += 1
                await asyncio.sleep(0.5)
                continue
            try:
                writer.write(b"GET /health HTTP/1.1\r\n")
                while not stop.is_set():
                    writer.write(b"X")
                    await writer.drain()
                    await asyncio.sleep(0.5)
                    if reader.at_eof():
                        break
            except OSError:
                pass
            count.refused += 1
            writer.close()

    await asyncio.gather(*(slow() for _ in range(200)))


async def attack_form_flood(http: str, ws: str, stop: asyncio.Event, count: Count,
                            bomb: bytes) -> None:
    body, ctype = form([("prompt", "x")] * 5000 + [("file", b"RIFF")])
    await until(stop, lambda: post(http, body, ctype, count), 0.05)


async def attack_foreign_origin(http: str, ws: str, stop: asyncio.Event, count: Count,
                                bomb: bytes) -> None:
    import websockets

    body, ctype = form([("file", b"RIFF")])

    async def once() -> None:
        count.tried += 1
        try:
            async with websockets.connect(ws, origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        except (OSError, websockets.WebSocketException):
            count.refused += 1
        await post(http, body, ctype, count, {"Origin": "http://evil.example"})

    await until(stop, once, 0.05)


async def attack_nested_json(http: str, ws: str, stop: asyncio.Event, count: Count,
                             bomb: bytes) -> None:
    import websockets

    async def once() -> None:
        count.tried += 1
        try:
            async with websockets.connect(ws) as sock:
                await sock.send("[" * 4000)
                reply = json.loads(await asyncio.wait_for(sock.recv(), 10))
                if reply.get("type") == "error":
                    count.refused += 1
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
            count.refused += 1

    await until(stop, once, 0.05)


ATTACKS: dict[str, Callable[..., Awaitable[None]] | None] = {
    "none": None,
    "flac-bomb": attack_flac_bomb,
    "squatters": attack_squatters,
    "rate-flip": attack_rate_flip,
    "slowloris": attack_slowloris,
    "form-flood": attack_form_flood,
    "foreign-origin": attack_foreign_origin,
    "nested-json": attack_nested_json,
}


class PeakRss:
    """Peak RSS of a process tree, sampled every 50 ms on a thread."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(0.05):
            total = 0
            for proc in [self._root, *self._root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)

    def close(self) -> int:
        self._stop.set()
        self._thread.join(2)
        return self.peak


async def one_round(name: str, http: str, ws: str, pid: int, clips: list[np.ndarray],
                    n_utts: int, bomb: bytes) -> dict[str, Any]:
    attack = ATTACKS[name]
    stop = asyncio.Event()
    count = Count()
    rss = PeakRss(pid)
    task = asyncio.ensure_future(attack(http, ws, stop, count, bomb)) if attack else None
    await asyncio.sleep(1.0 if attack else 0.0)  # the attack is under way first
    plans = [build(c, n_utts, clips) for c in range(CLIENTS)]
    runs = await asyncio.gather(*(run_client(ws, audio, utts, c * STAGGER_S)
                                  for c, (audio, utts) in enumerate(plans)),
                                return_exceptions=True)
    stop.set()
    if task is not None:
        try:
            await asyncio.wait_for(task, 60)
        except asyncio.TimeoutError:
            task.cancel()
    peak = rss.close()
    e2f, missed, errors = [], 0, []
    for run in runs:
        if isinstance(run, BaseException):
            errors.append(f"client failed: {run!r}")
            continue
        errors += run.errors
        for utt in run.utts:
            if utt.finals and utt.end_sent is not None:
                e2f.append(utt.finals[-1][0] - utt.end_sent)
            else:
                missed += 1
    return {"attack": name, "utterances": CLIENTS * n_utts, "missed": missed,
            "e2f_p50": pct(e2f, 50), "e2f_p95": pct(e2f, 95), "client_errors": errors,
            "peak_rss_mb": peak / 2**20, "tried": count.tried, "refused": count.refused}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utterances", type=int, default=3, help="per real client and attack")
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    names = args.attacks.split(",")
    unknown = set(names) - set(ATTACKS)
    if unknown:
        ap.error(f"unknown attacks: {', '.join(sorted(unknown))}")
    from conftest import _espeak  # type: ignore[import-not-found]  # the tests' speech

    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} (a shared machine "
          "slows the engine)")
    clips = [_espeak(t) for t in SENTENCES]
    bomb = flac_bomb()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serve.log"
        with log.open("wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "harken", "serve", "--port", "0"],
                                    stderr=err)
        try:
            http = ""
            while not http:
                if proc.poll() is not None:
                    raise SystemExit(f"harken serve exited:\n{log.read_text()}")
                match = re.search(r"listening on (http://\S+)", log.read_text())
                http = match.group(1) if match else ""
                time.sleep(0.2)
            ws = http.replace("http://", "ws://") + "/v1/stream"
            print(f"server {http}: {CLIENTS} real clients x {args.utterances} utterances per "
                  "attack, real-time pace")
            print(f"{'attack':<15} {'E2F p50':>8} {'E2F p95':>8} {'missed':>6} {'errors':>6} "
                  f"{'peak RSS':>9} {'refused':>12}")
            results = []
            for name in names:
                result = asyncio.run(one_round(name, http, ws, proc.pid, clips,
                                               args.utterances, bomb))
                results.append(result)
                print(f"{name:<15} {result['e2f_p50']:>7.2f}s {result['e2f_p95']:>7.2f}s "
                      f"{result['missed']:>6} {len(result['client_errors']):>6} "
                      f"{result['peak_rss_mb']:>7.0f}MB "
                      f"{result['refused']:>5}/{result['tried']:<6}", flush=True)
                for error in result["client_errors"][:3]:
                    print(f"    client error: {error}")
            worst = max(r["e2f_p95"] for r in results)
            print(f"worst E2F p95 {worst:.2f} s (target < 1.5 s); worst peak RSS "
                  f"{max(r['peak_rss_mb'] for r in results):.0f} MB (target < 600 MB)")
            if args.json:
                args.json.write_text(json.dumps({"machine": machine(), "results": results},
                                                indent=2))
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
