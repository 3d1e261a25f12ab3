"""Hostile uploads to ``POST /v1/audio/transcriptions``: memory bombs, busy servers, walk-aways.

A real ``harken serve`` process (scripted engine, energy VAD) on 127.0.0.1; its memory is the
RSS of its whole process tree (server and engine), sampled while the attack runs. The bomb is
a FLAC file of half an hour of 48 kHz stereo silence: 0.35 MB on the wire, 0.7 GB as
float32 (the old server decoded it whole, then mixed it down: over 1 GB).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from hostile_helpers import (
    MB,
    PeakRss,
    http,
    json_error,
    metric,
    multipart,
    serve_process,
    silent_flac,
)
from server_helpers import bursts, config, write_wav

from harken.config import EngineConfig
from harken.server.app import BackgroundServer

LIMIT_RSS = 600 * MB


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return silent_flac(1800.0)


def test_a_compressed_half_hour_is_transcribed_in_bounded_memory(tmp_path: Path, bomb: bytes):
    with serve_process(tmp_path) as (proc, url, _):
        body, ctype = multipart([("file", bomb), ("model", "whisper-1")])
        with PeakRss(proc.pid) as rss:
            status, _, answer = http(url, "POST", "/v1/audio/transcriptions", body,
                                     {"Content-Type": ctype}, timeout=300)
        assert status == 200, answer[:300]
        assert b'"text": ""' in answer  # silence has no words
        assert rss.peak < LIMIT_RSS, f"peak RSS {rss.peak / MB:.0f} MB"


def test_an_upload_longer_than_the_limit_is_refused_before_decoding(tmp_path: Path,
                                                                    bomb: bytes):
    with serve_process(tmp_path, "--max-upload-seconds", "600") as (proc, url, _):
        body, ctype = multipart([("file", bomb)])
        started = time.monotonic()
        with PeakRss(proc.pid) as rss:
            status, _, answer = http(url, "POST", "/v1/audio/transcriptions", body,
                                     {"Content-Type": ctype}, timeout=120)
        assert status == 413, answer[:300]
        error = json_error(answer)
        assert error["code"] == "audio_too_long" and "600" in error["message"]
        assert time.monotonic() - started < 5.0
        assert rss.peak < 300 * MB, f"peak RSS {rss.peak / MB:.0f} MB"


def test_a_busy_server_refuses_an_upload_before_decoding_it(tmp_path: Path, bomb: bytes):
    import websockets.sync.client as wsc

    with serve_process(tmp_path, "--max-sessions", "1") as (proc, url, _):
        ws_url = url.replace("http://", "ws://") + "/v1/stream"
        with wsc.connect(ws_url) as ws:
            ws.send('{"type": "start", "sample_rate": 16000}')
            assert '"ready"' in str(ws.recv(10))
            body, ctype = multipart([("file", bomb)])
            with PeakRss(proc.pid) as rss:
                status, headers, answer = http(url, "POST", "/v1/audio/transcriptions", body,
                                               {"Content-Type": ctype}, timeout=120)
        assert status == 503 and headers.get("retry-after"), answer[:300]
        assert json_error(answer)["code"] == "server_busy"
        assert rss.peak < 300 * MB, f"peak RSS {rss.peak / MB:.0f} MB"


def test_an_upload_whose_client_went_away_stops_being_transcribed(tmp_path: Path):
    """60 utterances at 0.3 s each in the engine: the client leaves after one second."""
    wav = write_wav(tmp_path / "long.wav", bursts(60))
    engine = EngineConfig(engine="scripted", options={"delay_s": 0.3})
    with BackgroundServer(config(engine=engine)) as srv:
        body, ctype = multipart([("file", wav.read_bytes())])
        host, port = srv.url.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)))
        head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n")
        sock.sendall(head.encode() + body)
        time.sleep(1.5)
        assert metric(srv.url, "harken_sessions") == 1  # it is working
        sock.close()  # the client gives up
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and metric(srv.url, "harken_sessions"):
            time.sleep(0.1)
        assert metric(srv.url, "harken_sessions") == 0, "still transcribing for nobody"
        answered = metric(srv.url, "harken_engine_requests_total")
        time.sleep(1.0)
        assert metric(srv.url, "harken_engine_requests_total") <= answered + 2


def test_the_real_clients_keep_working_during_a_bomb(tmp_path: Path, bomb: bytes):
    """One bomb in flight: a small upload from a real client still gets its answer."""
    wav = write_wav(tmp_path / "one.wav", bursts(1, lead_s=0.5))
    with serve_process(tmp_path) as (_, url, _):
        body, ctype = multipart([("file", bomb)])
        result: list[int] = []
        attacker = threading.Thread(target=lambda: result.append(http(
            url, "POST", "/v1/audio/transcriptions", body, {"Content-Type": ctype},
            timeout=300)[0]))
        attacker.start()
        try:
            time.sleep(0.5)
            from openai import OpenAI

            client = OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
            started = time.monotonic()
            with wav.open("rb") as f:
                text = client.audio.transcriptions.create(model="whisper-1", file=f).text
            assert text and time.monotonic() - started < 10.0
        finally:
            attacker.join(300)
        assert result == [200]
