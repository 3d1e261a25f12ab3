"""An engine process that keeps dying: the server backs off, then exits non-zero.

A real ``harken serve`` process; the test plays the OOM killer, killing every engine process
the server starts. The server restarts it with back-off a bounded number of times, answers
uploads with a clear 503 meanwhile, and then drains and exits with a non-zero status, so
systemd or Kubernetes restart it (instead of a process that stays up with /health at 503).
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
from hostile_helpers import http, json_error, multipart, serve_process
from server_helpers import bursts, write_wav


def test_an_engine_that_keeps_crashing_ends_in_a_non_zero_exit(tmp_path: Path):
    wav = write_wav(tmp_path / "one.wav", bursts(1, lead_s=0.5)).read_bytes()
    body, ctype = multipart([("file", wav)])
    with serve_process(tmp_path) as (proc, url, log):
        server = psutil.Process(proc.pid)
        killed: set[int] = set()
        upload_errors: list[dict[str, object]] = []
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            for child in server.children(recursive=True):
                if child.pid not in killed:
                    killed.add(child.pid)
                    child.kill()
            if len(killed) >= 4 and not upload_errors:
                status, headers, answer = http(url, "POST", "/v1/audio/transcriptions", body,
                                               {"Content-Type": ctype}, timeout=30)
                if status != 200:
                    assert status == 503 and headers.get("retry-after"), answer[:300]
                    upload_errors.append(json_error(answer))
            time.sleep(0.05)
        assert proc.poll() is not None, "the server stayed up without an engine"
        assert proc.returncode not in (0, None)
        assert upload_errors and upload_errors[0]["code"] == "engine_unavailable"
        assert "giving up" in log.read_text(errors="replace")
