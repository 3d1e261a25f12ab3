"""What the hostile-client tests share: a real ``harken serve`` process, its memory, raw HTTP.

The attacks are written as an attacker would run them: raw sockets and real clients against
a real server on 127.0.0.1. Memory is measured with psutil on the server's whole process
tree (the server and its engine process), sampled while the attack runs.
"""

from __future__ import annotations

import io
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

MB = 1 << 20


@contextmanager
def serve_process(tmp: Path, *extra: str, preexec: Callable[[], None] | None = None,
                  env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[bytes],
                                                                       str, Path]]:
    """Run ``harken serve`` (scripted engine, energy VAD, port 0); yield (proc, url, log).

    Its stderr goes to ``log`` (a file, so a flood of errors cannot block the server).
    """
    log = tmp / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harken", "serve", "--port", "0", "--engine", "scripted",
             "--vad", "energy", *extra], stderr=err, stdout=subprocess.DEVNULL,
            preexec_fn=preexec, env=env)
    try:
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline and url is None:
            match = re.search(r"listening on (http://\S+)", log.read_text(errors="replace"))
            if match:
                url = match.group(1)
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.1)
        if url is None:
            raise AssertionError(f"the server did not start: {log.read_text(errors='replace')}")
        yield proc, url, log
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def tree_rss(pid: int) -> int:
    """Resident memory of process ``pid`` and all its children, in bytes."""
    import psutil

    total = 0
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


class PeakRss:
    """Samples :func:`tree_rss` every 20 ms on a thread until closed; ``peak`` in bytes."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.peak = tree_rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-rss", daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, tree_rss(self._pid))


def silent_flac(seconds: float, rate: int = 48000, channels: int = 2) -> bytes:
    """A FLAC file of ``seconds`` s of silence: a few hundred KB that decode to GBs."""
    import soundfile

    buf = io.BytesIO()
    with soundfile.SoundFile(buf, "w", samplerate=rate, channels=channels, format="FLAC",
                             subtype="PCM_16") as f:
        block = np.zeros((rate * 60, channels), np.int16)
        left = int(seconds * rate)
        while left > 0:
            f.write(block[:min(left, len(block))])
            left -= len(block)
    return buf.getvalue()


def multipart(fields: list[tuple[str, str | bytes]], boundary: str = "hostileboundary"
              ) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type; bytes values are sent as files."""
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, bytes):
            out.write(f'Content-Disposition: form-data; name="{name}"; filename="a.flac"\r\n'
                      "Content-Type: application/octet-stream\r\n\r\n".encode())
            out.write(value)
        else:
            out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}'.encode())
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def address(url: str) -> tuple[str, int]:
    """(host, port) of an ``http://`` URL."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def http(url: str, method: str = "GET", path: str = "/", body: bytes = b"",
         headers: dict[str, str] | None = None, timeout: float = 30.0
         ) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP/1.1 request (Connection: close); return (status, headers, body).

    Headers are sent as given (``bytes`` values of ``headers`` are not allowed: use
    :func:`raw_request` for malformed ones).
    """
    host, port = address(url)
    head = {"Host": f"{host}:{port}", "Connection": "close", **(headers or {})}
    if body or method == "POST":
        head.setdefault("Content-Length", str(len(body)))
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in head.items()]
    return raw_request(url, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body,
                       timeout)


def raw_request(url: str, data: bytes, timeout: float = 30.0
                ) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is; read the answer until the server closes; parse it."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(1 << 16)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return parse_response(b"".join(chunks))


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a raw HTTP/1.1 answer (0 for no answer)."""
    if not raw:
        return 0, {}, b""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return status, headers, body


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (EOF, reset or an answer), else None."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if not sock.recv(1 << 16):
                return time.monotonic() - start
            return time.monotonic() - start  # an answer (e.g. 408) counts as closing
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return None


def json_error(body: bytes) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped JSON error body."""
    import json

    data = json.loads(body)
    assert set(data) == {"error"}, data
    assert isinstance(data["error"]["message"], str) and data["error"]["message"]
    return dict(data["error"])


def metric(url: str, name: str, headers: dict[str, str] | None = None) -> float:
    """The sum of a metric family's samples in ``GET /metrics``."""
    status, _, body = http(url, path="/metrics", headers=headers, timeout=10)
    assert status == 200, body[:200]
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total
