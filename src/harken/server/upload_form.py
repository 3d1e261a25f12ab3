"""Reading an upload's multipart form within the server's caps (for :mod:`.openai_api`).

The form is read part by part as it arrives: at most ``ServerConfig.max_form_fields``
fields (400 ``too_many_fields``), a file of at most ``max_upload_bytes`` (413
``file_too_large``), a whole form of at most 1 MiB more (413 ``body_too_large``), fields
other than the file of at most 4 KiB, and no read may wait more than ``body_timeout_s`` for
the client (408 ``body_timeout``). A malformed form is a 400 (``invalid_form``), never a 500.

Thread: the server's asyncio event loop (the request's handler task).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from .config import ServerConfig

__all__ = ["RequestError", "read_form"]

logger = logging.getLogger(__name__)

_FORM_SLACK_BYTES = 1 << 20
"""Bytes the form's other fields may add to ``max_upload_bytes``."""
_MAX_FIELD_BYTES = 4096
"""The longest form field other than the file, in bytes."""


class RequestError(Exception):
    """An OpenAI-style error answer: HTTP status, message, param and code."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The OpenAI-shaped JSON error body for this refusal."""
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param,
                          "code": self.code}}



async def _timed(awaitable: Awaitable[Any], timeout_s: float) -> Any:
    """``await awaitable``, or a 408 answer if the client's body stalls ``timeout_s`` s."""
    try:
        return await asyncio.wait_for(awaitable, timeout_s)
    except asyncio.TimeoutError:
        raise RequestError(408, f"the request body stalled for {timeout_s:g} s",
                            None, "body_timeout") from None


async def _read_part(part: Any, limit: int, timeout_s: float, what: str) -> bytes:
    """Read a form part, failing once it passes ``limit`` bytes (413) or stalls (408)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await _timed(part.read_chunk(1 << 16), timeout_s)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"{what} is larger than the {limit} bytes accepted",
                                part.name or None, "body_too_large" if what == "the form"
                                else "file_too_large")
        chunks.append(chunk)


async def read_form(request: Any, config: ServerConfig
                     ) -> tuple[bytes, dict[str, list[str]]]:
    """Read the multipart form within the server's caps on size, fields and stalls."""
    if not request.content_type.startswith("multipart/"):
        raise RequestError(400, "send the audio as multipart/form-data with a 'file' field",
                            "file")
    timeout = config.body_timeout_s
    body_left = config.max_upload_bytes + _FORM_SLACK_BYTES
    data: bytes | None = None
    fields: dict[str, list[str]] = {}
    count = 0
    try:
        reader = await request.multipart()
        while True:
            part = await _timed(reader.next(), timeout)
            if part is None:
                break
            count += 1
            if count > config.max_form_fields:
                raise RequestError(400, f"the form has more than {config.max_form_fields} "
                                    "fields", None, "too_many_fields")
            name = part.name or ""
            if name == "file":
                limit = min(config.max_upload_bytes, body_left)
                data = await _read_part(part, limit, timeout,
                                        "the file" if limit == config.max_upload_bytes
                                        else "the form")
                body_left -= len(data)
            else:
                raw = await _read_part(part, min(_MAX_FIELD_BYTES, body_left), timeout,
                                       f"form field {name!r}")
                body_left -= len(raw)
                fields.setdefault(name.removesuffix("[]"), []).append(
                    raw.decode("utf-8", "replace"))
    except RequestError:
        raise
    except (ValueError, AssertionError, RuntimeError) as exc:  # aiohttp's multipart parser
        logger.debug("malformed multipart body: %s", exc)
        raise RequestError(400, "the multipart/form-data body is malformed", None,
                            "invalid_form") from None
    if data is None:
        raise RequestError(400, "the form has no 'file' field", "file")
    return data, fields


