"""A web page the user visits attacks the server on 127.0.0.1 (headless Chromium).

Chromium (Debian's) is driven by Playwright. The hostile page is served by Playwright's
router at ``http://evil.test/`` (a foreign origin); ``--host-resolver-rules`` makes
``rebind.test`` resolve to 127.0.0.1, as a DNS-rebinding attacker's name would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hostile_helpers import metric
from server_helpers import config
from web_helpers import chromium_path

from harken.server.app import BackgroundServer

ATTACK = """async (base) => {
  const open = (path) => new Promise((done) => {
    const sock = new WebSocket(base.replace('http', 'ws') + path);
    sock.onopen = () => done('open');
    sock.onerror = () => done('refused');
  });
  const ws = [await open('/v1/stream'), await open('/v1/monitor')].join(' ');
  const form = new FormData();
  form.append('file', new Blob([new Uint8Array(64)]), 'a.wav');
  try {  // refused either way: an opaque 403, or a connection closed mid-upload
    await fetch(base + '/v1/audio/transcriptions', {method: 'POST', body: form,
                                                    mode: 'no-cors'});
  } catch (e) {}
  return ws;
}"""


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(config()) as srv:
        yield srv


@pytest.fixture()
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    chromium = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--host-resolver-rules=MAP rebind.test 127.0.0.1"])
        try:
            yield browser
        finally:
            browser.close()


def test_a_foreign_page_can_neither_stream_nor_upload(server, browser):
    page = browser.new_page()
    page.route("http://evil.test/", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<html><body>hi</body></html>"))
    page.goto("http://evil.test/")
    refused_before = metric(server.url, "harken_http_requests_total")
    assert page.evaluate(ATTACK, server.url) == "refused refused"  # stream and operator feed
    # The upload never reached the transcription handler.
    assert metric(server.url, "harken_http_requests_total") == refused_before


def test_a_rebound_name_gets_nothing_from_the_server(server, browser):
    port = server.url.rsplit(":", 1)[1]
    page = browser.new_page()
    response = page.goto(f"http://rebind.test:{port}/")
    assert response is not None and response.status == 421
    status = page.evaluate("async () => (await fetch('/health')).status")
    assert status == 421


def test_the_servers_own_page_still_connects(server, browser):
    page = browser.new_page()
    page.goto(server.url + "/")
    assert page.evaluate("""() => new Promise((done) => {
      const sock = new WebSocket(location.origin.replace('http', 'ws') + '/v1/stream');
      sock.onopen = () => { sock.close(); done('open'); };
      sock.onerror = () => done('refused');
    })""") == "open"
