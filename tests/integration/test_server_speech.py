"""OpenAI-compatible POST /v1/audio/speech, driven by the official openai package.

A real server on 127.0.0.1 with a token; the speech engine is a slowed-down tone engine
(a "package.module:Class" plug-in, 150 ms of work per 200 ms word), so streaming shows:
the first bytes must arrive long before the last word is synthesised.
"""

from __future__ import annotations

import json
import os
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from server_helpers import config

from harken.server.app import BackgroundServer

openai = pytest.importorskip("openai")

TOKEN = "speech-test-token"
WORD_BYTES = 24000 * 2 // 5  # one 200 ms tone word at 24 kHz, 16-bit

_PLUGIN = """
from harken.speak.engines.tone import ToneEngine

class SlowTone(ToneEngine):
    def __init__(self, voice, **options):
        super().__init__(voice, delay_ms=150, **options)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[BackgroundServer]:
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "slow_tone.py").write_text(_PLUGIN)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), old) if p)
    try:
        with BackgroundServer(config(token=TOKEN, speech_engine="slow_tone:SlowTone")) as srv:
            post(srv, {"input": "warm up", "voice": "alloy"})  # starts the voice's program
            yield srv
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


@pytest.fixture()
def client(server: BackgroundServer) -> Iterator[object]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key=TOKEN, max_retries=0,
                       timeout=30) as c:
        yield c


def post(server: BackgroundServer, body: object, token: str = TOKEN,
         raw: bytes | None = None) -> tuple[int, bytes]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(server.url + "/v1/audio/speech", data=data, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def test_pcm_is_streamed_before_synthesis_ends(client) -> None:
    started = time.monotonic()
    times, data = [], b""
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input="one two three four five six.",
            response_format="pcm") as response:
        assert response.headers["content-type"] == "audio/pcm"
        for chunk in response.iter_bytes():
            times.append(time.monotonic() - started)
            data += chunk
    # Six words take >= 0.9 s to synthesise; the first word's audio came well before.
    assert times[-1] >= 0.85
    assert times[0] < times[-1] - 0.5
    assert abs(len(data) - 6 * WORD_BYTES) <= 200 and len(data) % 2 == 0


def test_wav_stream_header_and_speed(client) -> None:
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="nova", input="one two", response_format="wav",
            speed=2.0) as response:
        data = response.read()
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    channels, rate = struct.unpack("<HI", data[22:28])
    assert (channels, rate) == (1, 24000)
    assert abs(len(data) - 44 - 2 * WORD_BYTES // 2) <= 200  # twice as fast: half as long


def test_wrong_or_missing_token_is_refused(server) -> None:
    status, _ = post(server, {"input": "hi"}, token="wrong")
    assert status == 401
    request = urllib.request.Request(server.url + "/v1/audio/speech", data=b'{"input":"hi"}')
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    with caught.value:
        assert caught.value.code == 401
    with openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.audio.speech.create(model="tts-1", voice="alloy", input="hi")


@pytest.mark.parametrize("body,param", [
    ({"input": ""}, "input"),
    ({"input": "x" * 5000}, "input"),
    ({"input": "hi", "response_format": "mp3"}, "response_format"),
    ({"input": "hi", "speed": 10}, "speed"),
    ({"input": "hi", "speed": "fast"}, "speed"),
    ({"input": ["a", "b"]}, "input"),
    ({"input": "hi", "voice": {"$ne": 1}}, "voice"),
    ([1, 2, 3], None),
])
def test_bad_requests_get_openai_shaped_errors(server, body, param) -> None:
    status, raw = post(server, body)
    assert status == 400
    error = json.loads(raw)["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_garbage_and_oversized_bodies(server) -> None:
    assert post(server, None, raw=b"\xff\xfe not json")[0] == 400
    assert post(server, None, raw=b"{" * 100_000)[0] == 400
    assert post(server, None, raw=b"x" * (27 << 20))[0] == 413


def test_a_client_leaving_mid_stream_stops_its_speech(server, client) -> None:
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=" ".join(["word"] * 40),
            response_format="pcm") as response:
        next(response.iter_bytes())  # then hang up with 7 s of speech to go
    status, data = post(server, {"input": "still here", "response_format": "pcm"})
    assert status == 200 and abs(len(data) - 2 * WORD_BYTES) <= 200
    with urllib.request.urlopen(server.url + "/health", timeout=10) as response:
        assert json.loads(response.read())["status"] == "ok"
