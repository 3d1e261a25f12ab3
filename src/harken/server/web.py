"""The browser page at ``GET /``: records the microphone and shows live text.

The page (``static/index.html``, shipped as package data) needs no external assets: its
script and styles are inline, so it works offline. It records with ``getUserMedia`` and an
AudioWorklet (a ScriptProcessor where AudioWorklet is missing), converts to 16-bit PCM at
the browser's own sample rate, and streams over harken's WebSocket protocol on
``/v1/stream`` (the server resamples). A ``?token=`` in the page's URL is passed on to the
WebSocket. Stable words show in normal text, unstable ones dimmed, finals as lines.

Thread: the handler runs on the server's asyncio event loop; the page is read from the
package once, when the routes are added (in ``Server.start()``).
"""

from __future__ import annotations

import base64
import logging
import secrets
from importlib import resources
from typing import Any

from .context import ServerContext

__all__ = ["PAGE_NONCE", "add_routes", "page_html"]

logger = logging.getLogger(__name__)

PAGE_NONCE = "{{nonce}}"
"""The placeholder in ``index.html`` replaced by each response's script nonce."""


def page_html() -> str:
    """The page's HTML as shipped in the package (with the nonce placeholder)."""
    return resources.files("harken.server").joinpath("static/index.html").read_text("utf-8")


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
        server: the server the page belongs to (unused for now; the same signature as the
            other protocol modules).
    """
    from aiohttp import web

    template = page_html()

    async def index(request: Any) -> Any:
        nonce = base64.b64encode(secrets.token_bytes(16)).decode("ascii")
        return web.Response(text=template.replace(PAGE_NONCE, nonce),
                            content_type="text/html", charset="utf-8",
                            headers=_headers(nonce))

    app.router.add_get("/", index)
