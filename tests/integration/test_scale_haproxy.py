"""Two ``harken serve`` replicas behind HAProxy (Debian's, with deploy/haproxy.cfg) on 127.0.0.1.

Eight ``harken client`` processes stream through the balancer. One replica gets SIGTERM
mid-stream: it drains (its clients' utterances end there, the rest reconnect to the other
replica with the audio since their last final), and every utterance gets exactly one final.
Another run SIGKILLs a replica: its clients are told the connection was lost, reconnect
through HAProxy and resend the audio after their last final, so they lose at most the
utterance in flight (in practice none) and get no final twice.

The replicas run the scripted engine and the energy VAD: the faults are the point here, and
the real model's behaviour behind a session is covered by the server's model tests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from server_helpers import bursts, write_wav

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"
CLIENTS = 8
UTTERANCES = 4

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="Debian's haproxy is not installed (scripts/test does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_replica(*extra: str) -> tuple[subprocess.Popen[str], int]:
    """``harken serve`` on a free port; returns the process and its port once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harken", "serve", "--port", "0", *extra],
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "listening on http://" in line:
            return proc, int(line.split("listening on http://", 1)[1].split()[0]
                             .rsplit(":", 1)[1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the replica did not start: {proc.stderr.read()}")


def start_haproxy(ports: list[int]) -> tuple[subprocess.Popen[bytes], int]:
    """HAProxy with the shipped config in front of ``ports``; waits until both are up."""
    port = _free_port()
    env = {**os.environ, "HARKEN_BIND": f"127.0.0.1:{port}",
           "HARKEN_1": f"127.0.0.1:{ports[0]}", "HARKEN_2": f"127.0.0.1:{ports[1]}"}
    proc = subprocess.Popen(["haproxy", "-db", "-f", str(CONFIG)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    ok = 0
    while time.monotonic() < deadline and ok < 4:  # both replicas marked up (rise 2)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                ok += r.status == 200
        except OSError:
            ok = 0
        time.sleep(0.3)
    if ok < 4:
        proc.kill()
        raise AssertionError(f"haproxy did not come up: {proc.communicate()[1]!r}")
    time.sleep(1.2)  # let the health checks see both replicas (inter 500ms, rise 2)
    return proc, port


def _stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _sessions(ports: list[int]) -> list[int]:
    out = []
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            out.append(json.load(r)["sessions"])
    return out


def stream_through(port: int, replicas: list[int], wav: Path,
                   fault: Any) -> list[tuple[int, list[dict[str, Any]], str]]:
    """Run the clients through HAProxy, call ``fault()`` mid-stream; their outputs."""
    url = f"ws://127.0.0.1:{port}/v1/stream"
    clients = [subprocess.Popen([sys.executable, "-m", "harken", "client", str(wav), "--url",
                                 url, "--json", "--no-partials", "--reconnect", "30"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(CLIENTS)]
    try:
        # Once every client streams (they start slowly on a loaded machine), wait into the
        # middle of an utterance, then strike.
        deadline = time.monotonic() + 60
        while sum(counts := _sessions(replicas)) < CLIENTS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert min(counts) > 0, f"leastconn should use both replicas: {counts}"
        time.sleep(1.5)
        fault()
        outs = [c.communicate(timeout=90) for c in clients]
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.wait()
    return [(c.returncode, [json.loads(x) for x in out.splitlines()], err)
            for c, (out, err) in zip(clients, outs, strict=True)]


def _run(tmp_path: Path, sig: int) -> tuple[list[tuple[int, list[dict[str, Any]], str]], int]:
    wav = write_wav(tmp_path / "four.wav", bursts(UTTERANCES, 8000, lead_s=0.8), 8000)
    args = ("--engine", "scripted", "--vad", "energy", "--no-partials",
            "--drain-timeout", "8", "--max-sessions", "32")
    replicas = [start_replica(*args) for _ in range(2)]
    balancer, port = start_haproxy([p for _, p in replicas])
    victim = replicas[0][0]
    try:
        results = stream_through(port, [p for _, p in replicas], wav,
                                 lambda: victim.send_signal(sig))
        victim.wait(20)
    finally:
        _stop(balancer)
        for proc, _ in replicas:
            _stop(proc)
            if proc.stderr is not None:
                proc.stderr.close()
        if balancer.stderr is not None:
            balancer.stderr.close()
    return results, victim.returncode


def _finals(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "final"]


def test_sigterm_one_replica_every_utterance_gets_exactly_one_final(tmp_path):
    results, code = _run(tmp_path, signal.SIGTERM)
    assert code == 0  # the drained replica exits cleanly
    moved = 0
    for status, messages, err in results:
        finals = _finals(messages)
        assert status == 0, err
        assert len(finals) == UTTERANCES, (messages, err)
        # One timeline across connections: the finals cover the four bursts in order.
        starts = [f["start"] for f in finals]
        assert starts == sorted(starts)
        assert all(b - a > 1.2 for a, b in zip(starts, starts[1:], strict=False))
        moved += any(m["type"] == "reconnecting" for m in messages)
    assert 1 <= moved <= CLIENTS - 1, [" ".join(m["type"][:5] for m in r[1]) for r in results]


def test_sigkill_one_replica_clients_reconnect_and_lose_at_most_the_utterance_in_flight(
        tmp_path):
    results, code = _run(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    moved = 0
    for status, messages, err in results:
        finals = _finals(messages)
        lost = [m for m in messages if m["type"] == "reconnecting"]
        assert status == 0, err
        assert UTTERANCES - 1 <= len(finals) <= UTTERANCES, (messages, err)
        if len(finals) < UTTERANCES:  # a loss is never silent
            assert lost, messages
        if lost:
            moved += 1
            assert "connection lost" in err and lost[0]["lost_s"] == 0.0
        starts = [f["start"] for f in finals]
        assert all(b - a > 1.2 for a, b in zip(starts, starts[1:], strict=False)), "no final twice"
    assert 1 <= moved <= CLIENTS - 1
