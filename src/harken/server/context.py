"""The seam between the server and its protocol modules: :class:`ServerContext`.

Each protocol module (harken's WebSocket protocol, the OpenAI endpoints, RealtimeSTT's
sockets, the page) is written against this small protocol, never against
:class:`~harken.server.app.Server`, which is the one module that imports them all. So the
server's modules form a graph without circles, and a protocol module can be driven in a
test by a small fake context (see ``tests/unit/test_server_context.py``).

Thread: every member is used on the server's asyncio event loop.
"""

from __future__ import annotations

from typing import Protocol

from ..config import VadConfig
from ..turn.base import TurnModel
from ..vad.base import VoiceActivityDetector
from .config import ServerConfig
from .engine_host import EngineHost
from .metrics import Histogram
from .registry import ConnectionRegistry

__all__ = ["ServerContext", "ServerStats", "VadMaker"]


class ServerStats:
    """Counters the server keeps for ``/metrics`` (loop-only)."""

    def __init__(self) -> None:
        self.connections_total = 0
        """WebSocket connections accepted since start (all protocols)."""
        self.rejected_total = 0
        """Sessions refused with "server busy"."""
        self.closed_by_error: dict[str, int] = {}
        """Connections closed because of an error, by error code."""
        self.finals_sent = 0
        """Final transcripts sent to clients."""
        self.partials_sent = 0
        """Partial transcripts (or deltas) sent to clients."""
        self.http_requests: dict[str, int] = {}
        """OpenAI-compatible HTTP requests answered, by status code."""
        self.http_latency = Histogram()
        """Seconds to answer an OpenAI-compatible transcription request."""


class VadMaker(Protocol):
    """Builds a loaded detector (and turn model) for one session (e.g.
    :class:`~harken.server.vads.VadFactory`).
    """

    def create(self) -> VoiceActivityDetector:
        """Return a new loaded detector (quick: no model load)."""

    @property
    def smart_turns(self) -> bool:
        """True when smart turn detection can be served."""

    def turn(self, config: VadConfig) -> TurnModel | None:
        """The loaded turn model a session with ``config`` needs (None: fixed turns)."""


class ServerContext(Protocol):
    """What a protocol module may use of the running server: six members."""

    @property
    def config(self) -> ServerConfig:
        """The server's settings."""

    @property
    def engine(self) -> EngineHost:
        """The engine host every session shares (started before any route is served)."""

    @property
    def vads(self) -> VadMaker:
        """Builds each session's detector."""

    @property
    def stats(self) -> ServerStats:
        """Counters for ``/metrics``."""

    @property
    def connections(self) -> ConnectionRegistry:
        """Every open WebSocket connection; a new one joins it (see ``serve``)."""

    def session_name(self, peer: str) -> str:
        """A unique, readable name for a new session from ``peer`` (an address)."""
