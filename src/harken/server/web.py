"""The browser page at ``GET /``: listen, speak, and watch the server at work.

The page is shipped as package data in ``static/``: ``index.html`` (the markup),
``app.css`` and four scripts (``common.js``, then ``listen.js``, ``speak.js`` and
``monitor.js``). They are joined into one HTML document when the routes are added, the
styles and scripts inline, so the page needs no outside assets and works offline; the
Content-Security-Policy lets only this response's own script (by a fresh nonce) run, and
lets it connect only back to this server.

- Listen records with ``getUserMedia`` (the microphone picked in the page) and an
  AudioWorklet (a ScriptProcessor where AudioWorklet is missing), converts to 16-bit PCM
  at the browser's own rate and streams over harken's WebSocket protocol on
  ``/v1/stream`` (the server resamples), with the language picked from the engine's list.
- Speak posts the text box to ``/v1/audio/speech`` and plays the streamed PCM.
- Server draws the snapshots :mod:`harken.server.monitor` pushes on ``/v1/monitor``.

The access token is typed in the page or given as ``?token=`` in its address; the page
passes it on (``?token=`` on WebSockets, a Bearer header on ``fetch``).

Thread: the handler runs on the server's asyncio event loop; the files are read from the
package once, when the routes are added (in ``Server.start()``).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import secrets
from importlib import resources
from typing import Any

from .context import ServerContext

__all__ = ["PAGE_NONCE", "SCRIPTS", "add_routes", "page_html"]

logger = logging.getLogger(__name__)

PAGE_NONCE = "{{nonce}}"
"""The placeholder in ``index.html`` replaced by each response's script nonce."""


SCRIPTS = ("common.js", "listen.js", "speak.js", "monitor.js")
"""The page's scripts, in the order they run (``common.js`` defines what the others use)."""


def _static(name: str) -> str:
    return resources.files("harken.server").joinpath(f"static/{name}").read_text("utf-8")


def page_html() -> str:
    """The page's HTML with its styles and scripts inline (nonce and languages as placeholders).

    Raises:
        ValueError: a static file holds a placeholder of the template (it would be replaced).
    """
    parts = {"css": _static("app.css"), "js": "\n".join(_static(n) for n in SCRIPTS)}
    for name, text in parts.items():
        if "{{" in text:
            raise ValueError(f"the page's {name} holds a '{{{{...}}}}' placeholder")
    return (_static("index.html").replace("{{css}}", parts["css"])
            .replace("{{js}}", parts["js"]))


def _languages(server: ServerContext) -> str:
    """The engine's languages (from its ready message) as escaped JSON for an attribute."""
    codes = server.engine.ready_info.get("languages")
    if not isinstance(codes, list):
        codes = []
    return html.escape(json.dumps([str(c) for c in codes][:200]), quote=True)


def _headers(nonce: str) -> dict[str, str]:
    # Only the page's own inline script (and the worklet it builds as a blob) may run; it
    # may connect only back to this server. no-referrer: the URL may carry the token.
    csp = ("default-src 'none'; "
           f"script-src 'nonce-{nonce}' blob:; "
           "style-src 'unsafe-inline'; img-src data:; "
           "connect-src 'self'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return {"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def add_routes(app: Any, server: ServerContext) -> None:
    """Register ``GET /`` (the page) on the aiohttp application.

    Args:
        app: the ``aiohttp.web.Application`` being built.
        server: the server the page belongs to (its engine's languages fill the picker).
    """
    from aiohttp import web

    template = page_html()

    async def index(request: Any) -> Any:
        nonce = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        text = template.replace(PAGE_NONCE, nonce).replace("{{languages}}", _languages(server))
        return web.Response(text=text,
                            content_type="text/html", charset="utf-8",
                            headers=_headers(nonce))

    app.router.add_get("/", index)
