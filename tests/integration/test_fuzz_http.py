"""Fuzzing the server's HTTP routes: any request gets a short answer, never a 500 or a traceback.

Hypothesis builds raw HTTP/1.1 requests (methods, paths, queries, headers with arbitrary
bytes, multipart forms with random parts, plain garbage) and sends them over a socket to a
real server on 127.0.0.1 (scripted engine, energy VAD, a token set so the auth path runs
too). Every answer must be a well-formed HTTP response with a status below 500 (or 503 busy),
the ``Server`` header ``harken``, and an OpenAI-shaped body when it is a JSON error; nothing
may be logged with a traceback, and the server must still answer ``/health`` afterwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from hostile_helpers import raw_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import bursts, config, write_wav

from harken.server.app import BackgroundServer

TOKEN = "fuzz-token-123"
PATHS = ["/", "/health", "/metrics", "/v1/audio/transcriptions", "/v1/stream",
         "/rtstt/control", "/rtstt/data", "/v1/realtime", "/nope", "//", "/v1/../health"]
HEADER_NAMES = ["Content-Type", "Authorization", "Origin", "Upgrade", "Connection",
                "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Transfer-Encoding",
                "Content-Encoding", "Accept", "OpenAI-Beta", "X-Junk"]
TEXTY = st.binary(max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    with BackgroundServer(config(token=TOKEN, header_timeout_s=1.0, body_timeout_s=1.0,
                                 max_connections_per_address=1000)) as srv:
        yield srv


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_wav(tmp_path_factory.mktemp("fuzz") / "a.wav", bursts(1)).read_bytes()


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A multipart body whose parts are random (names, headers, contents) and its type."""
    boundary = draw(st.sampled_from([b"b", b"xyz", b"--", b""]))
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from([b"file", b"model", b"response_format", b"stream",
                                     b"language", b"prompt", b"timestamp_granularities[]"])
                    | TEXTY)
        value = draw(st.sampled_from([b"json", b"text", b"srt", b"vtt", b"verbose_json",
                                      b"true", b"word"]) | st.binary(max_size=200))
        head = draw(st.sampled_from([b'Content-Disposition: form-data; name="%s"' % name,
                                     b'Content-Disposition: form-data; name="%s"; '
                                     b'filename="a.wav"' % name, b"Content-Disposition: x",
                                     b""]))
        parts.append(b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + value + b"\r\n")
    tail = draw(st.sampled_from([b"--" + boundary + b"--\r\n", b"", b"--" + boundary]))
    return b"".join(parts) + tail, b"multipart/form-data; boundary=" + boundary


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS",
                                   b"PATCH"]) | st.binary(min_size=1, max_size=8).filter(
        lambda b: b" " not in b and b"\r" not in b and b"\n" not in b))
    path = draw(st.sampled_from(PATHS)).encode()
    if draw(st.booleans()):
        path += b"?" + draw(st.sampled_from([b"token=" + TOKEN.encode(), b"token=bad",
                                             b"intent=transcription", b"session=a"])
                            | TEXTY.filter(lambda b: b" " not in b))
    headers = [(b"Host", b"127.0.0.1"), (b"Connection", b"close")]
    if draw(st.booleans()):
        headers.append((b"Authorization", b"Bearer " + draw(
            st.sampled_from([TOKEN.encode(), b"bad"]) | TEXTY)))
    for _ in range(draw(st.integers(0, 4))):
        headers.append((draw(st.sampled_from(HEADER_NAMES)).encode(), draw(TEXTY)))
    body = b""
    kind = draw(st.sampled_from(["none", "multipart", "bytes"]))
    if kind == "multipart":
        body, ctype = draw(multipart_bodies())
        headers.append((b"Content-Type", ctype))
    elif kind == "bytes":
        body = draw(st.binary(max_size=300))
    if body or draw(st.booleans()):
        headers.append((b"Content-Length", str(len(body)).encode()))
    head = b"\r\n".join([method + b" " + path + b" HTTP/1.1"]
                        + [k + b": " + v for k, v in headers])
    return head + b"\r\n\r\n" + body


def check_answer(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 0 or 100 <= status < 500 or status == 503, (status, body[:300])
    if status:
        assert headers.get("server") == "harken", headers
    if status >= 400 and body and \
            headers.get("content-type", "").startswith("application/json"):
        error = json.loads(body)["error"]
        assert isinstance(error["message"], str) and "Traceback" not in error["message"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(requests())
def test_random_requests_get_short_answers(server, caplog, data):
    caplog.set_level(logging.DEBUG)
    check_answer(*raw_request(server.url, data, timeout=10))
    assert not [r for r in caplog.records if r.exc_info], \
        [r.getMessage() for r in caplog.records if r.exc_info]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.sampled_from(["model", "language", "prompt", "response_format",
                                 "stream", "timestamp_granularities[]", "temperature"]),
                max_size=4),
       st.lists(st.text(max_size=30), min_size=4, max_size=4),
       st.integers(0, 400))
def test_real_uploads_with_random_fields(server, wav, names, values, cut):
    """A valid WAV upload with random fields, sometimes cut short: 200 or a 4xx."""
    parts = b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                     % (n.encode(), v.encode()) for n, v in zip(names, values, strict=False))
    audio = wav[:len(wav) - cut] if cut else wav
    body = (parts + b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"'
            b"\r\n\r\n" + audio + b"\r\n--b--\r\n")
    head = (b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
            b"\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\nContent-Type: "
            b"multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n" % len(body))
    status, headers, answer = raw_request(server.url, head + body, timeout=30)
    check_answer(status, headers, answer)
    assert status in (200, 400), answer[:300]


def test_the_server_is_healthy_after_the_fuzzing(server):
    status, _, body = raw_request(server.url, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  b"Connection: close\r\n\r\n")
    assert status == 200 and json.loads(body) == {"status": "ok"}
