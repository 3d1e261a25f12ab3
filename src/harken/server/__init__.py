"""The harken server: many clients sharing a pool of engine processes over WebSocket and HTTP.

Start it with ``harken serve`` or :class:`~harken.server.app.Server`. Importing this package
imports nothing heavy: the web framework (aiohttp, the ``server`` extra) is imported when a
server starts.
"""

from __future__ import annotations
