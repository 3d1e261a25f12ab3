"""The browser page's Speak and Server parts, and its accessibility, in headless Chromium.

A real server on 127.0.0.1 with a token, the scripted transcription engine and espeak-ng
as the speech engine. The Server part is checked with four concurrent clients of
harken's protocol streaming tone bursts from threads here; axe-core (installed by
scripts/test with npm into .cache/npm, injected by the test only, never served) checks the
page in its busiest states, light and dark.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from server_helpers import bursts, config, silence, write_wav
from web_helpers import axe_serious, launch, new_page, screenshots, wait_text

from harken.audio.convert import float32_to_pcm16
from harken.server.app import BackgroundServer

TOKEN = "v1ews-t0ken"


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(config(token=TOKEN, speech_engine="espeak")) as srv:
        # Starts the voice's program (and its threads) before any test counts threads.
        request = urllib.request.Request(
            srv.url + "/v1/audio/speech", data=json.dumps({"input": "warm up"}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as resp:
            assert resp.read()
        yield srv


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    wav = write_wav(tmp_path_factory.mktemp("views") / "quiet.wav", silence(1.0))
    with launch(wav) as b:
        yield b


def test_speak_plays_the_servers_streamed_speech_and_stop_silences_it(server, browser):
    with new_page(browser, f"{server.url}/?token={TOKEN}", color_scheme="dark") \
            as (page, errors):
        page.fill("#say", "Good morning. The report is ready.")
        page.click("#speak-start")
        done = wait_text(page, "#speak-status", "Done", 30)
        page.fill("#say", " ".join(["This sentence is long enough to be stopped."] * 8))
        page.click("#speak-start")
        wait_text(page, "#speak-status", "received", 30)
        assert page.is_enabled("#speak-stop")
        page.focus("#speak-stop")
        page.keyboard.press("Enter")  # keyboard operable
        stopped = wait_text(page, "#speak-status", "Stopped", 10)
        screenshots(page, "speak-stopped-dark")
        violations = axe_serious(page)
    spoken = float(done.split()[1])
    assert 1.0 < spoken < 6.0, done  # espeak-ng at 24 kHz: two short sentences
    assert float(stopped.split()[2]) > 0.0, stopped
    assert not errors, errors
    assert not violations, violations


def _client(url: str, audio: np.ndarray, stop: threading.Event, out: list[str]) -> None:
    """harken's protocol: stream ``audio`` at real-time pace, then silence until ``stop``."""
    from websockets.sync.client import connect

    chunk = 1600  # 0.1 s at 16 kHz
    pcm = bytes(float32_to_pcm16(audio))
    quiet = bytes(chunk * 2)
    with connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm16"}))
        out.append(json.loads(ws.recv(10))["type"])
        start = time.monotonic()
        sent = 0
        while not stop.is_set():
            piece = pcm[sent * 2:(sent + chunk) * 2] or quiet
            ws.send(piece)
            sent += chunk
            time.sleep(max(0.0, start + sent / 16000 - time.monotonic()))


def test_server_view_shows_four_live_clients_with_text_and_latency(server, browser):
    url = server.ws_url
    stop = threading.Event()
    greetings: list[str] = []
    threads = [threading.Thread(target=_client, args=(url, bursts(2, 16000, lead_s=0.3 + i / 4),
                                                      stop, greetings), name=f"web-client-{i}")
               for i in range(4)]
    for t in threads:
        t.start()
    try:
        with new_page(browser, f"{server.url}/?token={TOKEN}") as (page, errors):
            page.click("#watch")
            page.wait_for_function("""() => {
                const rows = [...document.querySelectorAll('#sessions tbody tr')];
                return rows.length === 4 && rows.every(r =>
                    r.querySelector('.e2f').textContent.endsWith(' s'));
            }""", timeout=30_000)
            rows = page.eval_on_selector_all("#sessions tbody tr", """rs => rs.map(r =>
                [...r.querySelectorAll('td')].map(td => td.textContent))""")
            queue = page.inner_text("#m-queue")
            sessions = page.inner_text("#m-sessions")
            rtf = float(page.inner_text("#m-rtf"))
            engines = page.inner_text("#m-engines")
            screenshots(page, "server-view")
            violations = axe_serious(page)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert greetings == ["ready"] * 4
    assert sessions.startswith("4 of ") and queue.isdigit() and rtf >= 0, (sessions, queue, rtf)
    assert {r[1] for r in rows} == {"harken"} and engines == "1 ok", engines
    for _name, _protocol, duration, last_final, e2f in rows:
        assert last_final.startswith("speech "), rows  # the scripted engine's live text
        assert 0.0 < float(e2f.split()[0]) < 5.0, rows
        assert duration.endswith(" s"), rows
    assert not errors, errors
    assert not violations, violations


def test_server_view_and_speak_with_a_wrong_token_say_so(server, browser):
    with new_page(browser, f"{server.url}/?token=nope") as (page, errors):
        page.click("#speak-start")
        said = wait_text(page, "#speak-status", "token", 15)
        page.click("#watch")
        shown = wait_text(page, "#monitor-status", "token", 15)
        assert page.inner_text("#watch") == "Show the server"
        page.fill("#token", TOKEN)
        page.click("#watch")
        wait_text(page, "#monitor-status", "Live:", 15)
    assert "refused the access token" in shown and "refused the access token" in said
    assert all("401" in e or "WebSocket" in e for e in errors), errors


def test_monitor_feed_refuses_strangers_and_oversize_messages(server):
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    url = server.url.replace("http://", "ws://") + "/v1/monitor"
    for bad in ("", "?token=wrong", f"?token={TOKEN}x"):
        with pytest.raises(InvalidStatus) as refused:
            connect(url + bad, open_timeout=5)
        assert refused.value.response.status_code == 401
    with connect(f"{url}?token={TOKEN}", open_timeout=5) as ws:
        first = json.loads(ws.recv(5))
        assert first["type"] == "snapshot" and first["connections"] == []  # a viewer is no session
        ws.send("x" * 100_000)  # the feed takes no input: an oversize message ends it
        with pytest.raises(ConnectionClosed):
            for _ in range(10):
                ws.recv(5)
