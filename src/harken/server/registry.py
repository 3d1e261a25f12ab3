"""ConnectionRegistry: every open WebSocket connection of one server, whatever its protocol.

harken's protocol, OpenAI Realtime and RealtimeSTT's control and data sockets all join it;
``/health`` and ``/metrics`` count it, it counts each client address's connections (the
per-address limit), and the server's close shuts every member down.

Thread: loop-only (the server's asyncio event loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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

    def __init__(self, per_address: int | None = None) -> None:
        self._open: dict[Shuttable, str] = {}
        self._by_address: dict[str, int] = {}
        self._per_address = per_address
        self.closing = False
        """True once the server began shutting down."""

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Shuttable]:
        """The open connections (a copy: safe while connections come and go)."""
        return iter(list(self._open))

    def full(self, address: str) -> bool:
        """Whether ``address`` has as many connections open as one address may
        (``per_address``; None: no limit).
        """
        return self._per_address is not None and \
            self._by_address.get(address, 0) >= self._per_address

    def add(self, conn: Shuttable, address: str = "?") -> None:
        """Count a connection from ``address`` as open."""
        if conn in self._open:
            return
        self._open[conn] = address
        self._by_address[address] = self._by_address.get(address, 0) + 1

    def discard(self, conn: Shuttable) -> None:
        """Forget a connection (it closed)."""
        address = self._open.pop(conn, None)
        if address is None:
            return
        left = self._by_address[address] - 1
        if left:
            self._by_address[address] = left
        else:
            del self._by_address[address]

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
