"""``harken serve`` and ``harken client`` as users run them: real processes, real signals."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from server_helpers import bursts, write_wav


def write_bursts(path: Path, n: int, rate: int = 8000) -> Path:
    """0.8 s of silence, then n bursts of 1 s tone each followed by 0.8 s of silence."""
    return write_wav(path, bursts(n, rate, lead_s=0.8), rate)


def start_server(*extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harken", "serve", "--port", "0", "--engine", "scripted",
         "--vad", "energy", *extra], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"the server did not start: {proc.stderr.read()}")


def stop_server(proc: subprocess.Popen[str], sig: int = signal.SIGINT) -> str:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err
    return err


def test_serve_and_client_end_to_end(tmp_path):
    wav = write_bursts(tmp_path / "two.wav", 2)
    proc, url = start_server()
    try:
        ws = url.replace("http://", "ws://") + "/v1/stream"
        out = subprocess.run([sys.executable, "-m", "harken", "client", str(wav), "--url", ws,
                              "--speed", "0", "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        messages = [json.loads(line) for line in out.stdout.splitlines()]
        types = [m["type"] for m in messages]
        assert types[0] == "ready" and types[-1] == "stopped"
        assert types.count("final") == 2 and types.count("speech_started") == 2
        # Plain output: one line per final with its stream times.
        out = subprocess.run([sys.executable, "-m", "harken", "client", str(wav), "--url", ws,
                              "--speed", "4"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert len(lines) == 2 and all(re.match(r"\[\s*\d+\.\d\d - \s*\d+\.\d\d\] speech ", x)
                                       for x in lines), lines
    finally:
        err = stop_server(proc)
    assert "shutting down" in err


def test_sigterm_while_a_client_streams_finishes_its_final(tmp_path):
    wav = write_bursts(tmp_path / "one.wav", 1)
    proc, url = start_server("--drain-timeout", "5")
    ws = url.replace("http://", "ws://") + "/v1/stream"
    client = subprocess.Popen([sys.executable, "-m", "harken", "client", str(wav), "--url", ws,
                               "--json", "--reconnect", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert client.stdout is not None
    lines: list[str] = []
    try:
        # Signal once the server heard speech start, however slowly the client started
        # (a fixed sleep was flaky on a loaded machine: the signal could come before the
        # burst was sent).
        while not lines or json.loads(lines[-1])["type"] != "speech_started":
            line = client.stdout.readline()
            assert line, "the client ended before speech started"
            lines.append(line)
        stop_server(proc, signal.SIGTERM)
        out, err = client.communicate(timeout=15)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    messages = [json.loads(line) for line in lines + out.splitlines()]
    types = [m["type"] for m in messages]
    # The drain let the utterance end by itself: one final for the whole 1 s burst at 0.8 s,
    # then "stopped", the shutdown error and close code 1012 (the client may not reconnect).
    assert types[-4:] == ["final", "stopped", "error", "reconnecting"], types
    final = messages[types.index("final")]
    assert types.count("final") == 1 and final["start"] < 0.9 and final["end"] > 1.75
    assert messages[-2]["code"] == "shutting_down" and "close code 1012" in messages[-1]["reason"]
    assert client.returncode == 1 and "gave up reconnecting" in err


def test_client_reports_a_missing_file(tmp_path):
    out = subprocess.run([sys.executable, "-m", "harken", "client", str(tmp_path / "no.wav")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "no such file" in out.stderr


def test_serve_with_two_engines_survives_a_sigkilled_engine(tmp_path):
    import urllib.request

    import psutil

    def health(url: str) -> dict:
        with urllib.request.urlopen(url + "/health", timeout=10) as r:
            return json.loads(r.read())

    wav = write_bursts(tmp_path / "three.wav", 3)
    proc, url = start_server("--engines", "2", "--engine-threads", "1")
    try:
        assert [e["state"] for e in health(url)["engines"]] == ["ok", "ok"]
        workers = [c for c in psutil.Process(proc.pid).children(recursive=True)
                   if "harken.worker" in " ".join(c.cmdline())]
        assert len(workers) == 2, workers
        workers[0].send_signal(signal.SIGKILL)
        ws = url.replace("http://", "ws://") + "/v1/stream"
        out = subprocess.run([sys.executable, "-m", "harken", "client", str(wav), "--url", ws,
                              "--speed", "0", "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        types = [json.loads(line)["type"] for line in out.stdout.splitlines()]
        assert types.count("final") == 3, types
        state = health(url)
        assert state["status"] == "ok" and state["engine_restarts"] >= 1, state
        assert sum(e["answered"] for e in state["engines"]) >= 3
    finally:
        stop_server(proc)
