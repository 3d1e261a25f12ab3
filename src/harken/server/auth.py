"""Optional bearer-token access control for the harken server (an aiohttp middleware).

When :attr:`~harken.server.config.ServerConfig.token` is set, every request needs
``Authorization: Bearer <token>``, except ``GET /`` (the browser page), ``GET /health`` and
``GET /livez`` (the probes).
WebSocket upgrades may pass the token as a ``?token=`` query parameter instead, because
browsers cannot set headers on a WebSocket. Anything else gets ``401`` with an
OpenAI-shaped JSON error, so the ``openai`` package raises ``AuthenticationError``.

The middleware wraps every route registered on the application, including routes other
modules add later, so a protocol module gets access control without doing anything.
Tokens are compared in constant time (:func:`hmac.compare_digest`). RealtimeSTT's extra
ports (:mod:`harken.server.rtstt`) use the same middleware with no open path.

Thread: the middleware runs on the server's asyncio event loop, in each request's handler task.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ConfigError

__all__ = ["OPEN_PATHS", "check_token", "has_token", "is_authorized", "make_middleware"]

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/", "/health", "/livez"})
"""Paths served without a token (to GET and HEAD requests only)."""

_MAX_TOKEN_CHARS = 4096


def check_token(token: object) -> str | None:
    """Validate a configured token; return it unchanged.

    Args:
        token: None (no access control) or the token clients must present.

    Raises:
        ConfigError: the token is not a string of 1 to 4096 visible ASCII characters (no
            spaces or control characters: it must fit in an HTTP header and a URL).
    """
    if token is None:
        return None
    if not isinstance(token, str) or not 1 <= len(token) <= _MAX_TOKEN_CHARS \
            or not all("!" <= ch <= "~" for ch in token):
        shown = type(token).__name__ if not isinstance(token, str) else f"{len(token)} chars"
        raise ConfigError("token must be None or 1 to 4096 visible ASCII characters (no "
                          f"spaces or control characters), got {shown}")
    return token


def _presented(request: Any) -> str | None:
    """The token a request carries: the Bearer header (first), or ``?token=`` on a WebSocket.

    Another scheme in the header (e.g. Basic credentials for a proxy in front) is ignored.
    """
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return str(value.strip())
    upgrade = request.headers.get("Upgrade", "")
    if upgrade.lower() == "websocket":
        value = request.query.get("token")
        return value if isinstance(value, str) else None
    return None


def is_authorized(request: Any, token: str, open_paths: frozenset[str] = OPEN_PATHS) -> bool:
    """Whether ``request`` may pass: an open path, or the right token (constant time).

    Args:
        request: the aiohttp request.
        token: the token clients must present.
        open_paths: paths served to GET and HEAD without a token (RealtimeSTT's extra ports
            pass none: their "/" is a protocol socket, not the page).
    """
    if request.method in ("GET", "HEAD") and request.path in open_paths:
        return True
    return has_token(request, token)


def has_token(request: Any, token: str) -> bool:
    """Whether ``request`` carries the right token (compared in constant time).

    A header that is not UTF-8 (aiohttp keeps its bytes as surrogates) is a wrong token,
    not an error.
    """
    presented = _presented(request)
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"),
                               token.encode("utf-8"))


def make_middleware(token: str, open_paths: frozenset[str] = OPEN_PATHS) -> Any:
    """An aiohttp middleware that answers 401 to requests without the right token.

    Imports aiohttp (call it from ``Server.start()``).

    Args:
        token: the token clients must present (already validated by :func:`check_token`).
        open_paths: paths served to GET and HEAD without a token.
    """
    from aiohttp import web

    @web.middleware
    async def bearer_token(request: Any,
                           handler: Callable[[Any], Awaitable[Any]]) -> Any:
        if is_authorized(request, token, open_paths):
            return await handler(request)
        missing = _presented(request) is None
        logger.info("refused %s %s from %s: %s token", request.method, request.path,
                    request.remote, "no" if missing else "wrong")
        message = ("this server needs a token: send 'Authorization: Bearer <token>' (a "
                   "WebSocket may add ?token=<token> to its URL instead)" if missing
                   else "the token is not valid")
        body = {"error": {"message": message, "type": "invalid_request_error",
                          "param": None, "code": "invalid_api_key"}}
        return web.json_response(body, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="harken"'})

    return bearer_token
