"""Hostile HTTP clients: huge forms, stalled bodies, slow headers, bad headers, leaks.

Every attack is sent over a raw socket to a real server on 127.0.0.1 (the scripted engine and
the energy VAD, in-process on the "harken-server" thread, or ``harken serve`` as a process
where its file descriptors or command line matter).
"""

from __future__ import annotations

import json
import logging
import re
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_helpers import (
    address,
    closed_within,
    http,
    json_error,
    multipart,
    raw_request,
    serve_process,
)
from server_helpers import bursts, config, write_wav
from websockets.exceptions import ConnectionClosed

from harken.server.app import BackgroundServer

TOKEN = "hostile-Token_0123456789"


@pytest.fixture(scope="module")
def wav_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("hostile") / "one.wav"
    return write_wav(path, bursts(1, lead_s=0.5)).read_bytes()


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(config(header_timeout_s=2.0, body_timeout_s=1.0)) as srv:
        yield srv


@pytest.fixture(scope="module")
def locked() -> Iterator[BackgroundServer]:
    with BackgroundServer(config(token=TOKEN)) as srv:
        yield srv


def post(url: str, body: bytes, ctype: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return http(url, "POST", "/v1/audio/transcriptions", body,
                {"Content-Type": ctype, **headers})


# ---------------------------------------------------------------- forms and bodies


def test_a_form_of_thousands_of_small_fields_is_refused(server, wav_bytes):
    body, ctype = multipart([("prompt", "x")] * 5000 + [("file", wav_bytes)])
    started = time.monotonic()
    status, _, answer = post(server.url, body, ctype)
    assert status == 400, answer[:200]
    assert json_error(answer)["code"] == "too_many_fields"
    assert time.monotonic() - started < 5.0


def test_a_body_over_the_size_cap_is_refused_whatever_its_parts(server, wav_bytes):
    """Two "file" parts, each under the file cap, add up to more than the body may hold."""
    junk = b"\0" * (20 << 20)
    body, ctype = multipart([("file", junk), ("file", junk), ("file", wav_bytes)])
    status, _, answer = post(server.url, body, ctype)
    assert status == 413, answer[:200]
    assert json_error(answer)["code"] in ("body_too_large", "file_too_large")


def test_a_stalled_body_is_cut_off(server):
    sock = socket.create_connection(address(server.url))
    with sock:
        sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: multipart/form-data; boundary=b\r\n"
                     b"Content-Length: 100000\r\n\r\n--b\r\n")
        took = closed_within(sock, 8.0)
    assert took is not None and took < 6.0, "a stalled upload held its connection"


def test_headers_sent_byte_by_byte_are_cut_off(server):
    sock = socket.create_connection(address(server.url))
    with sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 8.0 and not closed:
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            closed = closed_within(sock, 0.3) is not None
        took = time.monotonic() - started
    assert closed and took < 6.0, "a slow-loris client held its connection"


# ---------------------------------------------------------------- malformed input


def test_a_non_utf8_authorization_header_gets_401_not_a_traceback(locked, caplog):
    caplog.set_level(logging.DEBUG)
    head = (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: Bearer \xff\xfe\xfd\r\n\r\n")
    status, _, body = raw_request(locked.url, head)
    assert status == 401, body[:300]
    assert json_error(body)["code"] == "invalid_api_key"
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_deeply_nested_json_gets_an_error_message_not_a_crash(server, caplog):
    import websockets.sync.client as wsc

    caplog.set_level(logging.DEBUG)
    ws_url = server.url.replace("http://", "ws://")
    with wsc.connect(ws_url + "/v1/stream") as ws:
        ws.send("[" * 4000)
        reply = json.loads(ws.recv(5))
        assert reply["type"] == "error" and reply["code"] == "bad_message"
        with pytest.raises(ConnectionClosed):
            ws.recv(5)
        assert ws.close_code == 1008
    with wsc.connect(ws_url + "/rtstt/control") as ws:
        ws.send("[" * 4000)
        assert json.loads(ws.recv(5))["status"] == "error"
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


def test_a_malformed_request_line_does_not_log_its_token(server, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "SeCrEt-in-the-url-42"
    status, _, body = raw_request(server.url, f"GET /v1/stream?token={secret} HTTP/1.1 "
                                  "junk\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert status == 400
    assert secret.encode() not in body
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    assert secret not in logged


# ---------------------------------------------------------------- what responses reveal


def test_health_without_the_token_is_only_a_status(locked):
    status, _, body = http(locked.url, path="/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, _, body = http(locked.url, path="/health",
                           headers={"Authorization": f"Bearer {TOKEN}"})
    details = json.loads(body)
    assert status == 200 and details["status"] == "ok" and "sessions" in details
    text = json.dumps(details)
    assert "pid" not in text and not re.search(r'"/[^"]*/', text), text


def test_no_versions_paths_or_heap_addresses_in_answers(server):
    for method, path, body in (("GET", "/", b""), ("GET", "/health", b""),
                               ("GET", "/nothing-here", b""),
                               ("POST", "/v1/audio/transcriptions", b"")):
        _, headers, _ = http(server.url, method, path, body)
        assert not re.search(r"python|aiohttp", headers.get("server", ""), re.I), headers
    _, headers, _ = raw_request(server.url, b"BAD\x01 / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert not re.search(r"python|aiohttp", headers.get("server", ""), re.I), headers
    body, ctype = multipart([("file", b"RIFF\x00\x00\x00\x00WAVEjunk" * 50)])
    status, _, answer = post(server.url, body, ctype)
    assert status == 400
    message = json_error(answer)["message"]
    assert not re.search(r"0x[0-9a-f]{6,}|/usr/|/home/|site-packages", message), message


# ---------------------------------------------------------------- the token's secrecy


def test_the_token_can_come_from_a_file_and_stays_out_of_ps(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    with serve_process(tmp_path, "--token-file", str(token_file)) as (proc, url, _):
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert TOKEN.encode() not in cmdline
        assert http(url, path="/metrics")[0] == 401
        assert http(url, path="/metrics",
                    headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200


# ---------------------------------------------------------------- file descriptors


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))


def test_thousands_of_idle_connections_neither_lock_out_nor_flood_the_log(tmp_path: Path):
    """300 idle connections against a server limited to 200 open files."""
    with serve_process(tmp_path, "--header-timeout", "2", preexec=_low_fd_limit) \
            as (_, url, log):
        before = log.stat().st_size
        idle: list[socket.socket] = []
        try:
            for _ in range(300):
                try:
                    idle.append(socket.create_connection(address(url), timeout=2))
                except OSError:
                    break
            time.sleep(1.0)
            deadline = time.monotonic() + 10.0
            status = 0
            while time.monotonic() < deadline and status != 200:
                try:
                    status = http(url, path="/health", timeout=2)[0]
                except OSError:
                    time.sleep(0.2)
            assert status == 200, "the server stopped answering"
        finally:
            for sock in idle:
                sock.close()
        assert log.stat().st_size - before < 20_000, "the log was flooded"
