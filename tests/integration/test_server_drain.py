"""Behind a load balancer: readiness versus liveness, and the drain on shutdown.

A draining server answers ``/health`` with 503 ("draining") while ``/livez`` stays 200, lets
the utterance being spoken end by itself (audio keeps flowing), sends its one final and
"stopped", then closes with 1012 ("service restart": reconnect elsewhere). New WebSockets
during the drain are refused with the same code.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import numpy as np
import websockets
from server_helpers import RATE, bursts, config, silence, tone, ws_base

from harken.config import EngineConfig
from harken.server import protocol as p
from harken.server.app import Server


async def _get(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, await r.json()


async def _send_paced(ws: Any, audio: np.ndarray, chunk_s: float = 0.05) -> None:
    """Send pcm16 audio at about 4x real time until it ends or the socket closes."""
    step = int(chunk_s * RATE)
    for i in range(0, len(audio), step):
        try:
            await ws.send((np.clip(audio[i:i + step], -1, 1) * 32767).astype("<i2").tobytes())
        except websockets.ConnectionClosed:
            return
        await asyncio.sleep(chunk_s / 4)


def _drain_mid_utterance() -> tuple[list[Any], int | None]:
    """SIGTERM-style close while a client speaks: check what must always hold, and return
    the streaming client's messages and close code."""
    async def main() -> tuple[list[Any], int | None, Any, Any, Any]:
        server = Server(config(engine=EngineConfig(engine="scripted",
                                                   options={"delay_s": 0.2})))
        await server.start()
        try:
            assert (await _get(server.url + "/health"))[0] == 200
            async with websockets.connect(ws_base(server) + "/v1/stream") as ws:
                await ws.send(p.encode(p.Start(RATE, "pcm16", 1, None, False)))
                assert isinstance(p.parse_server(await ws.recv()), p.Ready)
                # 0.3 s silence, 1.5 s speech, then silence: the signal comes mid-speech.
                audio = np.concatenate([silence(0.3), tone(1.5), silence(3.0)])
                sending = asyncio.ensure_future(_send_paced(ws, audio))
                msgs: list[Any] = []
                while not any(isinstance(m, p.SpeechStartedMessage) for m in msgs):
                    msgs.append(p.parse_server(await ws.recv()))
                closing = asyncio.ensure_future(server.close(drain_timeout=8))
                await asyncio.sleep(0.05)
                health = await _get(server.url + "/health")
                live = await _get(server.url + "/livez")
                late_msgs: list[Any] = []
                async with websockets.connect(ws_base(server) + "/v1/stream") as late:
                    try:
                        while True:
                            late_msgs.append(p.parse_server(await late.recv()))
                    except websockets.ConnectionClosed as exc:
                        late_code = exc.rcvd.code if exc.rcvd is not None else None
                code = None
                try:
                    async with asyncio.timeout(10):
                        while True:
                            msgs.append(p.parse_server(await ws.recv()))
                except websockets.ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd is not None else None
                await closing
                await sending
        finally:
            await server.close()
        return msgs, code, health, live, (late_code, late_msgs)

    msgs, code, health, live, (late_code, late_msgs) = asyncio.run(main())
    assert health == (503, health[1]) and health[1]["status"] == "draining"
    assert live == (200, {"status": "alive"})
    assert late_code == 1012
    # The refused newcomer is told why before the close (its error was once lost: the
    # refusal closed the socket before a sender ran).
    assert [(type(m), m.code) for m in late_msgs] == [(p.Error, p.ErrorCode.SHUTDOWN)], \
        late_msgs
    finals = [m for m in msgs if isinstance(m, p.Final)]
    # One final, covering the whole 1.5 s of speech: the drain did not cut it.
    assert len(finals) == 1, msgs
    assert finals[0].start < 0.4 and finals[0].end > 1.75, finals[0]
    return msgs, code


def test_drain_lets_the_utterance_end_then_refuses_newcomers_with_reconnect_code():
    _drain_mid_utterance()


def test_the_drained_connection_says_stopped_and_closes_with_1012():
    """Under load the handler once returned while the shutdown task was still sending:
    aiohttp then closed the socket with 1000 and "stopped" was lost (about 1 run in 3 at
    load ~10 on 2 cores); the connection now waits for its one closing task."""
    msgs, code = _drain_mid_utterance()
    assert any(isinstance(m, p.Stopped) for m in msgs), (code, msgs[-3:])
    assert code == 1012


def test_health_is_ready_and_livez_needs_no_token():
    async def main() -> None:
        async with Server(config(token="s3cret-token-for-tests")) as server:
            status, body = await _get(server.url + "/livez")
            assert (status, body) == (200, {"status": "alive"})
            assert (await _get(server.url + "/health"))[0] == 200
            async with aiohttp.ClientSession() as http, \
                    http.get(server.url + "/metrics") as r:
                assert r.status == 401  # the probes are open, nothing else is

    asyncio.run(main())


def test_a_drain_without_audio_is_bounded_by_the_drain_timeout():
    async def main() -> None:
        server = Server(config())
        await server.start()
        async with websockets.connect(ws_base(server) + "/v1/stream") as ws:
            await ws.send(p.encode(p.Start(RATE, "pcm16", 1, None, False)))
            await ws.recv()
            audio = bursts(1)[: int(1.0 * RATE)]  # stops mid-speech, then nothing
            await ws.send((audio * 32767).astype("<i2").tobytes())
            await asyncio.sleep(0.2)
            t0 = asyncio.get_running_loop().time()
            await server.close(drain_timeout=1.0)
            took = asyncio.get_running_loop().time() - t0
        assert took < 1.0 + 3.0

    asyncio.run(main())
