"""ConnectionRegistry: every open WebSocket connection of one server, whatever its protocol.

harken's protocol, OpenAI Realtime and RealtimeSTT's control and data sockets all join it;
``/health`` and ``/metrics`` count it and the server's close shuts every member down.

Thread: loop-only (the server's asyncio event loop).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["ConnectionRegistry", "Shuttable"]


class Shuttable(Protocol):
    """An open WebSocket connection the server can shut down."""

    async def shutdown(self, timeout: float) -> None:
        """Finish what is in flight (at most ``timeout`` seconds), then close."""


class ConnectionRegistry:
    """Every open WebSocket connection of one server, whatever its protocol (loop-only).

    Once :meth:`shutdown` began, :attr:`closing` is True and handlers refuse new clients.
    """

    def __init__(self) -> None:
        self._open: set[Shuttable] = set()
        self.closing = False
        """True once the server began shutting down."""

    def __len__(self) -> int:
        return len(self._open)

    def add(self, conn: Shuttable) -> None:
        """Count a connection as open."""
        self._open.add(conn)

    def discard(self, conn: Shuttable) -> None:
        """Forget a connection (it closed)."""
        self._open.discard(conn)

    async def shutdown(self, timeout: float) -> None:
        """Refuse new connections; shut every open one down together.

        Args:
            timeout: seconds each connection may wait for its transcripts; the whole
                shutdown is bounded by ``timeout`` + 3 s.
        """
        self.closing = True
        conns = list(self._open)
        if conns:
            await asyncio.wait([asyncio.ensure_future(c.shutdown(timeout)) for c in conns],
                               timeout=timeout + 3.0)
