"""Hostile WebSocket clients: squatters, idlers, foreign origins, rate flippers, snoopers.

A real server on 127.0.0.1 (scripted engine, energy VAD, "harken-server" thread) and real
clients: ``websockets`` for harken's protocol and RealtimeSTT's sockets, urllib-style raw
HTTP for the origin and Host checks.
"""

from __future__ import annotations

import contextlib
import json
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import websockets.sync.client as wsc
from hostile_helpers import http
from server_helpers import bursts, config
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harken.audio.convert import float32_to_pcm16
from harken.server.app import BackgroundServer


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(config(max_sessions=4, admit_timeout_s=1.0, idle_timeout_s=2.0,
                                 max_connections_per_address=12)) as srv:
        yield srv


def ws_url(srv: BackgroundServer, path: str = "/v1/stream") -> str:
    return srv.url.replace("http://", "ws://") + path


def stream_one_utterance(url: str) -> list[str]:
    """A real client: start, 2.3 s of speech-like audio, stop; the message types it got."""
    audio = bursts(1, lead_s=0.5)
    types = []
    with wsc.connect(url) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm16"}))
        for i in range(0, len(audio), 1600):
            ws.send(bytes(float32_to_pcm16(audio[i:i + 1600])))
        ws.send('{"type": "stop"}')
        while True:
            message = json.loads(ws.recv(15))
            types.append(message["type"])
            if message["type"] in ("stopped", "error"):
                return types


def closed_with(ws: Any) -> tuple[int | None, str | None]:
    """Read until the server closes ``ws``: (close code, code of the last error message)."""
    code = None
    try:
        while True:
            message = json.loads(ws.recv(5))
            if message.get("type") == "error":
                code = message.get("code")
    except ConnectionClosed:
        pass
    return ws.close_code, code


def test_sockets_that_never_start_do_not_lock_real_clients_out(server):
    with contextlib.ExitStack() as stack:
        squatters = [stack.enter_context(wsc.connect(ws_url(server))) for _ in range(8)]
        types = stream_one_utterance(ws_url(server))
        assert types[0] == "ready" and "final" in types, types
        time.sleep(1.5)
        for ws in squatters:  # closed for not starting in time
            assert closed_with(ws) == (1008, "timeout")


def test_an_idle_session_times_out(server):
    with wsc.connect(ws_url(server)) as ws:
        ws.send('{"type": "start", "sample_rate": 16000}')
        assert json.loads(ws.recv(5))["type"] == "ready"
        reply = json.loads(ws.recv(6))
        assert reply["type"] == "error" and reply["code"] == "timeout", reply
        with pytest.raises(ConnectionClosed):
            ws.recv(3)


def test_one_address_cannot_open_more_than_its_share(server):
    held = []
    with contextlib.ExitStack() as stack:
        with pytest.raises((InvalidStatus, ConnectionClosed)):
            for _ in range(20):
                ws = stack.enter_context(wsc.connect(ws_url(server, "/rtstt/control")))
                held.append(ws)
                ws.send('{"command": "get_parameter", "parameter": "language"}')
                ws.recv(3)
        assert len(held) <= 12


# ---------------------------------------------------------------- browsers


EVIL = "http://evil.example"


def test_a_foreign_origin_cannot_open_a_websocket(server):
    for path in ("/v1/stream", "/rtstt/control", "/rtstt/data", "/v1/realtime"):
        with pytest.raises(InvalidStatus) as info:
            wsc.connect(ws_url(server, path), origin=EVIL).close()  # type: ignore[arg-type]
        assert info.value.response.status_code == 403, path
    # The server's own page and clients that send no Origin keep working.
    with wsc.connect(ws_url(server), origin=server.url) as ws:  # type: ignore[arg-type]
        ws.send('{"type": "ping"}')
        assert json.loads(ws.recv(5))["type"] == "pong"


def test_a_foreign_origin_cannot_post_an_upload(server):
    status, _, body = http(server.url, "POST", "/v1/audio/transcriptions", b"x",
                           {"Origin": EVIL, "Content-Type": "multipart/form-data; boundary=b"})
    assert status == 403, body[:200]


def test_a_listed_origin_may_connect():
    with BackgroundServer(config(allow_origins=("https://app.example",))) as srv:
        with wsc.connect(ws_url(srv), origin="https://app.example") as ws:  # type: ignore[arg-type]
            ws.send('{"type": "ping"}')
            assert json.loads(ws.recv(5))["type"] == "pong"


def test_a_rebound_host_name_is_refused(server):
    """DNS rebinding: the attacker's name now points at 127.0.0.1; the Host header tells."""
    port = server.url.rsplit(":", 1)[1]
    for path in ("/", "/health", "/metrics"):
        status, _, _ = http(server.url, path=path, headers={"Host": f"evil.example:{port}"})
        assert status == 421, path
    assert http(server.url, path="/health", headers={"Host": f"localhost:{port}"})[0] == 200


# ---------------------------------------------------------------- RealtimeSTT's sockets


def frame(samples: np.ndarray, rate: int) -> bytes:
    meta = json.dumps({"sampleRate": rate}).encode()
    return struct.pack("<I", len(meta)) + meta + bytes(float32_to_pcm16(samples))


def test_a_sample_rate_flipping_client_does_not_stall_the_server(server):
    stop = threading.Event()
    closed: list[int | None] = []

    def flip() -> None:
        try:
            with wsc.connect(ws_url(server, "/rtstt/data")) as ws:
                i = 0
                while not stop.is_set():
                    rate = 4000 if i % 2 else 384000
                    ws.send(frame(np.zeros(rate // 50, np.float32), rate))
                    i += 1
        except ConnectionClosed as exc:
            closed.append(exc.rcvd.code if exc.rcvd else None)

    attacker = threading.Thread(target=flip)
    attacker.start()
    try:
        time.sleep(1.0)
        worst = 0.0
        for _ in range(5):
            started = time.monotonic()
            assert http(server.url, path="/health", timeout=20)[0] == 200
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.2)
        assert worst < 1.0, f"/health took {worst:.1f} s during the attack"
    finally:
        stop.set()
        attacker.join(10)
    assert closed == [1008], closed


def test_a_control_socket_cannot_reach_another_clients_data_socket(server):
    """Two stock RealtimeSTT clients behind one address: a control socket without a session
    id is ambiguous and refused; a client that adds its id reaches its own data socket."""
    with contextlib.ExitStack() as stack:
        for url in ("/rtstt/data", "/rtstt/data", "/rtstt/data?session=mine-1234567890"):
            ws = stack.enter_context(wsc.connect(ws_url(server, url)))
            ws.send(frame(np.zeros(1600, np.float32), 16000))
            assert json.loads(ws.recv(5))["type"] == "vad_detect_start"
        with wsc.connect(ws_url(server, "/rtstt/control")) as control:
            control.send(json.dumps({"command": "get_parameter",
                                     "parameter": "last_transcription_bytes_b64"}))
            assert json.loads(control.recv(5))["status"] == "error"
            control.send(json.dumps({"command": "call_method", "method": "abort"}))
            assert json.loads(control.recv(5))["status"] == "error"
        with wsc.connect(ws_url(server, "/rtstt/control?session=mine-1234567890")) as control:
            control.send(json.dumps({"command": "get_parameter",
                                     "parameter": "is_recording"}))
            assert json.loads(control.recv(5)) == {"status": "success",
                                                   "parameter": "is_recording",
                                                   "value": False}


def test_realtimestt_data_sockets_that_send_nothing_are_closed(server):
    with contextlib.ExitStack() as stack:
        squatters = [stack.enter_context(wsc.connect(ws_url(server, "/rtstt/data")))
                     for _ in range(5)]
        time.sleep(1.5)
        for ws in squatters:
            assert closed_with(ws) == (1008, "timeout")
        types = stream_one_utterance(ws_url(server))
        assert "final" in types, types
