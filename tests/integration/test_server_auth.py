"""The server's optional bearer token: every route but GET / and /health needs it.

A real server on 127.0.0.1 ("harken-server" thread, scripted engine, energy VAD) with a
token; real clients: urllib for plain HTTP, ``websockets`` for the WebSocket routes, the
official ``openai`` package (whose api_key becomes the bearer token) and ``harken client``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from server_helpers import bursts, config, write_wav
from websockets.exceptions import InvalidStatus

from harken.errors import ConfigError
from harken.server import protocol as p
from harken.server.app import BackgroundServer, ServerConfig

TOKEN = "t0k3n-Only.For_Tests~"


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(config(token=TOKEN)) as srv:
        yield srv


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0.5 s of silence, 1 s of tone, 0.8 s of silence (one utterance), 16 kHz."""
    return write_wav(tmp_path_factory.mktemp("auth") / "one.wav", bursts(1, lead_s=0.5))


def get(url: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("bad", ["", "has space", "new\nline", "é", 42, "x" * 4097])
def test_a_bad_token_is_a_config_error(bad: Any) -> None:
    with pytest.raises(ConfigError, match="token must be"):
        ServerConfig(token=bad)


def test_the_token_is_not_in_the_config_repr() -> None:
    assert TOKEN not in repr(ServerConfig(token=TOKEN))


# ---------------------------------------------------------------- plain HTTP


def test_the_page_and_health_are_open(server):
    assert get(server.url + "/")[0] == 200
    assert get(server.url + "/", method="HEAD")[0] == 200
    status, _, body = get(server.url + "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"


@pytest.mark.parametrize("headers", [
    {}, bearer("wrong"), bearer(TOKEN + "x"), bearer(TOKEN[:-1]), bearer(""),
    {"Authorization": TOKEN}, {"Authorization": f"Basic {TOKEN}"}])
def test_metrics_without_the_right_token_get_401_json(server, headers):
    status, resp_headers, body = get(server.url + "/metrics", headers)
    assert status == 401
    assert resp_headers["Content-Type"].startswith("application/json")
    assert resp_headers["WWW-Authenticate"].startswith("Bearer")
    error = json.loads(body)["error"]
    assert error["code"] == "invalid_api_key"
    is_bearer = headers.get("Authorization", "").startswith("Bearer")
    assert ("not valid" if is_bearer else "needs a token") in error["message"]
    assert TOKEN not in body.decode()


def test_metrics_with_the_token(server):
    for headers in (bearer(TOKEN), {"Authorization": f"bearer  {TOKEN} "}):
        status, _, body = get(server.url + "/metrics", headers)
        assert status == 200 and b"harken_sessions" in body


def test_the_query_token_is_only_for_websockets(server):
    """Plain HTTP must use the header (a URL with the token ends up in logs)."""
    assert get(f"{server.url}/metrics?token={TOKEN}")[0] == 401


def test_other_modules_routes_are_covered_too(server):
    status, _, _ = get(server.url + "/no-such-route")
    assert status == 401  # nothing about the server's routes leaks without a token
    assert get(server.url + "/no-such-route", bearer(TOKEN))[0] == 404


# ---------------------------------------------------------------- WebSockets


async def ws_status(url: str, headers: dict[str, str] | None = None) -> int | str:
    """401 (the handshake's status) or the first message's type after "start"."""
    try:
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(p.encode(p.Start(16000)))
            return type(p.parse_server(await asyncio.wait_for(ws.recv(), 10))).__name__
    except InvalidStatus as exc:
        return exc.response.status_code


@pytest.mark.parametrize("path", ["/v1/stream", "/v1/realtime", "/rtstt/control"])
def test_websockets_need_the_token(server, path):
    url = server.url.replace("http://", "ws://") + path

    async def main() -> list[int | str]:
        return [await ws_status(url), await ws_status(url, bearer("wrong")),
                await ws_status(url + "?token=wrong"), await ws_status(url + "?token=")]

    assert asyncio.run(main()) == [401] * 4


def test_stream_with_the_token_in_the_header_or_the_query(server):
    url = server.ws_url

    async def main() -> list[int | str]:
        return [await ws_status(url, bearer(TOKEN)), await ws_status(f"{url}?token={TOKEN}"),
                # A Bearer header wins over the query: a wrong one is refused.
                await ws_status(f"{url}?token={TOKEN}", bearer("wrong")),
                # Another scheme (a proxy's Basic credentials) leaves the query in charge.
                await ws_status(f"{url}?token={TOKEN}", {"Authorization": "Basic eDp5"})]

    assert asyncio.run(main()) == ["Ready", "Ready", 401, "Ready"]


# ---------------------------------------------------------------- clients


def test_openai_api_key_is_the_token(server, wav):
    openai = pytest.importorskip("openai")
    upload = (wav.name, wav.read_bytes(), "audio/wav")
    with openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0,
                       timeout=30) as client:
        with pytest.raises(openai.AuthenticationError) as info:
            client.audio.transcriptions.create(model="whisper-1", file=upload)
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    with openai.OpenAI(base_url=server.url + "/v1", api_key=TOKEN, max_retries=0,
                       timeout=30) as client:
        result = client.audio.transcriptions.create(model="whisper-1", file=upload)
    assert result.text.startswith("speech "), result.text


def test_harken_client_token(server, wav):
    def client(*extra: str, env_token: str = "") -> subprocess.CompletedProcess[str]:
        import os

        return subprocess.run([sys.executable, "-m", "harken", "client", str(wav), "--url",
                               server.ws_url, "--speed", "0", "--json", *extra],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "HARKEN_TOKEN": env_token})

    refused = client("--token", "wrong")
    assert refused.returncode == 1 and "token was refused" in refused.stderr, refused.stderr
    for ok in (client("--token", TOKEN), client(env_token=TOKEN)):
        assert ok.returncode == 0, ok.stderr
        types = [json.loads(line)["type"] for line in ok.stdout.splitlines()]
        assert types[0] == "ready" and types[-1] == "stopped" and "final" in types, types


def test_harken_serve_token_option_and_environment(monkeypatch):
    from harken.cli.main import build_parser
    from harken.cli.serve import _config

    args = build_parser().parse_args(["serve", "--token", TOKEN])
    assert _config(args).token == TOKEN
    monkeypatch.setenv("HARKEN_TOKEN", "from-env")
    assert _config(build_parser().parse_args(["serve"])).token == "from-env"
    monkeypatch.setenv("HARKEN_TOKEN", "")
    assert _config(build_parser().parse_args(["serve"])).token is None
