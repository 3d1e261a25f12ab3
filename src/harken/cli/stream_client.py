"""The WebSocket session of ``harken client``, which reconnects and resumes streaming.

One :class:`ReconnectingStream` sends "start", the audio and "stop", and prints the server's
messages until "stopped". When the connection is lost before that (the server drained and
closed with 1012, crashed, or a load balancer dropped it), it reconnects to the same URL
(through the balancer: usually another replica), with back-off, for up to
``reconnect_s`` seconds, and sends first the audio since the last final it received
(:class:`~harken.cli.replay.ReplayBuffer`, bounded): the utterance in flight is transcribed
by the new server, so no utterance is lost. Audio produced while reconnecting waits in the
audio source (a file is read at its pace, then caught up; the microphone's queue holds
about 6 s). Each loss is reported on stderr (and as a ``{"type": "reconnecting"}`` line
with ``--json``), with the seconds replayed and any seconds that did not fit.

Times printed (and ``start``/``end`` in ``--json`` lines) are on one timeline across
connections: seconds since the stream began.

Thread: the asyncio loop of ``harken client`` (aiohttp's WebSocket client).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

from .replay import ReplayBuffer

__all__ = ["ReconnectingStream"]

_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0)
"""Seconds between reconnection attempts (the last repeats)."""


_CLOSE_WAIT_S = 2.0
"""Seconds to wait for the close frame after a failed send."""


class _Lost(Exception):
    """The connection ended before "stopped" (reason in the message)."""


class ReconnectingStream:
    """Stream ``audio`` to ``url``; reconnect and replay on loss (see the module docstring).

    Args:
        url: the server's (or the load balancer's) WebSocket URL.
        start: the "start" message (:class:`~harken.server.protocol.Start`, pcm16 mono).
        audio: pcm16 chunks; the stream ends when it does.
        headers: HTTP headers of each connection (the token).
        show: prints one server message: ``show(message, raw_json)``.
        as_json: also print client notes (reconnections) as JSON lines.
        reconnect_s: seconds to keep trying after a loss; 0: never reconnect.
        replay_s: the most audio kept for a replay, in seconds.
    """

    def __init__(self, url: str, start: Any, audio: AsyncIterator[bytes], *,
                 headers: dict[str, str], show: Any, as_json: bool,
                 reconnect_s: float = 30.0, replay_s: float = 30.0) -> None:
        self._url = url
        self._start = start
        self._audio = audio
        self._headers = headers
        self._show = show
        self._json = as_json
        self._reconnect_s = reconnect_s
        self._replay = ReplayBuffer(start.sample_rate * 2 * start.channels, replay_s,
                                    2 * start.channels)
        self._ended = False
        self._stop_sent = False
        self._ready_since_loss = False
        self.failed = False
        """An error message (other than the server's shutdown) arrived."""
        self.connections = 0
        """Connections that got "ready"."""

    async def run(self) -> bool:
        """Stream until "stopped" arrives; False if the connection was lost for good.

        Raises:
            aiohttp.WSServerHandshakeError, aiohttp.ClientConnectionError: the first
                connection failed (nothing to resume), or a 401/403 later.
        """
        import aiohttp

        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as http:
            lost_since: float | None = None
            attempt = 0
            while True:
                try:
                    await self._connection(http)
                    return True
                except _Lost as why:
                    reason = str(why)
                except (aiohttp.WSServerHandshakeError, aiohttp.ClientConnectionError) as exc:
                    if self.connections == 0 or getattr(exc, "status", 0) in (401, 403):
                        raise
                    reason = f"cannot connect: {exc}"
                now = loop.time()
                if lost_since is None:
                    lost_since, attempt = now, 0
                    self._note_loss(reason)
                if now - lost_since >= self._reconnect_s:
                    print(f"harken client: gave up reconnecting after {self._reconnect_s:g} s",
                          file=sys.stderr, flush=True)
                    return False
                await asyncio.sleep(_BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)])
                attempt += 1
                if self._ready_since_loss:
                    lost_since = None

    def _note_loss(self, reason: str) -> None:
        replay = self._replay
        print(f"harken client: connection lost ({reason}); reconnecting and sending again "
              f"the {replay.kept_s:.1f} s of audio since the last final"
              + (f" ({replay.lost_s:.1f} s of audio did not fit in the replay buffer and is "
                 "lost)" if replay.lost_s else ""), file=sys.stderr, flush=True)
        if self._json:
            print(json.dumps({"type": "reconnecting", "reason": reason,
                              "replay_s": round(replay.kept_s, 3),
                              "lost_s": round(replay.lost_s, 3)}), flush=True)

    async def _connection(self, http: Any) -> None:
        """One connection: "start", the replay, new audio, "stop"; returns on "stopped".

        Raises:
            _Lost: it ended before "stopped".
        """
        from ..server import protocol as p

        self._ready_since_loss = False
        async with http.ws_connect(self._url, headers=self._headers) as ws:
            await ws.send_str(p.encode(self._start))
            base = self._replay.start_s
            reading = asyncio.ensure_future(self._read(ws, base))
            try:
                for chunk in self._replay.chunks():
                    await ws.send_bytes(chunk)
                while not self._ended and not reading.done() and not ws.closed:
                    try:
                        chunk = await self._audio.__anext__()
                    except StopAsyncIteration:
                        self._ended = True
                        break
                    self._replay.append(chunk)  # kept before sending: a failed send replays it
                    await ws.send_bytes(chunk)
                if self._ended and not ws.closed and not reading.done():
                    await ws.send_str(json.dumps({"type": "stop"}))
                    self._stop_sent = True
                await reading
            except (ConnectionError, RuntimeError) as exc:  # a send on a dying socket
                # The reader knows why (the close code): give it a moment to say.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reading), _CLOSE_WAIT_S)
                raise _Lost(f"send failed: {exc}") from None
            finally:
                if not reading.done():
                    reading.cancel()
                    await asyncio.gather(reading, return_exceptions=True)
                self._stop_sent = False

    async def _read(self, ws: Any, base: float) -> None:
        """Print messages until our "stop" is answered; raise :class:`_Lost` otherwise."""
        import aiohttp

        from ..server import protocol as p

        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            message = p.parse_server(msg.data)
            if isinstance(message, p.Ready):
                self.connections += 1
                self._ready_since_loss = True
            if isinstance(message, p.Final) and message.end:
                self._replay.confirm(base + message.end)
            if isinstance(message, p.Error) and message.code != p.ErrorCode.SHUTDOWN:
                self.failed = True
            self._show(_shifted(message, base), _shifted_raw(msg.data, base))
            if isinstance(message, p.Stopped) and self._stop_sent:
                return
        code = ws.close_code
        raise _Lost(f"close code {code}" if code is not None else "the connection dropped")


def _shifted(message: Any, base: float) -> Any:
    """``message`` with its ``start``/``end`` moved onto the stream's timeline."""
    import dataclasses

    if not base or not dataclasses.is_dataclass(message):
        return message
    fields = {f.name for f in dataclasses.fields(message)}
    changes = {k: getattr(message, k) + base for k in ("start", "end") if k in fields}
    return dataclasses.replace(message, **changes) if changes else message  # type: ignore[type-var]


def _shifted_raw(raw: str, base: float) -> str:
    if not base:
        return raw
    with contextlib.suppress(ValueError):
        data = json.loads(raw)
        if isinstance(data, dict):
            for key in ("start", "end"):
                if isinstance(data.get(key), (int, float)):
                    data[key] = round(data[key] + base, 3)
            return json.dumps(data)
    return raw
