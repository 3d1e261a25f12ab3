"""The harken server on 127.0.0.1 with real WebSocket clients (scripted engine, energy VAD).

Each test runs a real :class:`~harken.server.app.Server` (a real engine process with the
scripted engine) and real ``websockets`` clients on one asyncio loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import numpy as np
import pytest
import websockets
from server_helpers import RATE, bursts, config, run, silence, ws_base

from harken.audio.convert import float32_to_pcm16
from harken.config import EngineConfig, RealtimeConfig
from harken.server import protocol as p
from harken.server.app import Server


def ws_url(server: Server) -> str:
    return ws_base(server) + "/v1/stream"


async def collect(ws: Any, until: str = "stopped", timeout: float = 10.0) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            msg = p.parse_server(await ws.recv())
            out.append(msg)
            if p.encode(msg).startswith(f'{{"type":"{until}"'):
                return out


async def stream(ws: Any, audio: np.ndarray, encoding: str = "pcm16", rate: int = RATE,
                 chunk_s: float = 0.1, channels: int = 1, pace: float = 0.0) -> None:
    """Send "start" and the audio; ``pace`` > 0 sleeps that fraction of each chunk's time."""
    await ws.send(p.encode(p.Start(rate, encoding, channels)))
    ready = p.parse_server(await ws.recv())
    assert ready == p.Ready(ready.session, rate)  # type: ignore[union-attr]
    step = int(chunk_s * rate) * channels
    for i in range(0, len(audio), step):
        await ws.send(encode_audio(audio[i:i + step], encoding))
        if pace:
            await asyncio.sleep(chunk_s * pace)


def encode_audio(chunk: np.ndarray, encoding: str) -> bytes:
    if encoding == "float32":
        return chunk.astype("<f4").tobytes()
    if encoding == "pcm16":
        return bytes(float32_to_pcm16(chunk))
    raise AssertionError(f"use g711() for {encoding}")


def g711(chunk: np.ndarray, law: str) -> bytes:
    """Encode with the reference algorithm (search the decode table for the nearest code)."""
    from harken.audio.convert import alaw_to_float32, ulaw_to_float32

    table = (ulaw_to_float32 if law == "ulaw" else alaw_to_float32)(bytes(range(256)))
    codes = np.abs(chunk[:, None] - table[None, :]).argmin(axis=1).astype(np.uint8)
    return codes.tobytes()


def finals(messages: list[Any]) -> list[p.Final]:
    return [m for m in messages if isinstance(m, p.Final)]


def test_stream_gets_speech_events_partials_finals_and_stopped():
    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server)) as ws:
            await stream(ws, bursts(2), pace=0.5)
            await ws.send(p.encode(p.Stop()))
            msgs = await collect(ws)
        kinds = [type(m).__name__ for m in msgs]
        assert kinds.count("SpeechStartedMessage") == 2
        assert kinds.count("SpeechEndedMessage") == 2
        assert "Partial" in kinds
        got = finals(msgs)
        assert [f.utterance for f in got] == [1, 2]
        for f, start in zip(got, (0.3, 2.1), strict=True):
            # Scripted text describes the audio; times are stream seconds.
            assert f.text.startswith("speech ")
            assert abs(f.start - (start - 0.4)) < 0.15 or abs(f.start - start) < 0.45
            assert f.words and f.words[0].start >= f.start - 1e-6
            assert f.language == "en"
            # The append-only field: the partials' stable words ("speech 0.9...") are a
            # guess the final rewrites, so nothing is appended before the final, which
            # appends exactly its text.
            mine = [m for m in msgs if isinstance(m, (p.Partial, p.Final)) and
                    m.utterance == f.utterance]
            assert "".join(m.append for m in mine) == f.text
            assert all(m.append == "" for m in mine if isinstance(m, p.Partial))
        assert any(m.stable for m in msgs if isinstance(m, p.Partial))
        assert isinstance(msgs[-1], p.Stopped)

    run(body)


@pytest.mark.parametrize("encoding, rate, channels", [
    ("pcm16", 8000, 1), ("float32", 48000, 2), ("ulaw", 8000, 1), ("alaw", 8000, 1)])
def test_every_encoding_rate_and_channel_count(encoding, rate, channels):
    async def body(server: Server) -> None:
        audio = bursts(1, rate)
        async with websockets.connect(ws_url(server)) as ws:
            await ws.send(p.encode(p.Start(rate, encoding, channels, partials=False)))
            assert isinstance(p.parse_server(await ws.recv()), p.Ready)
            step = rate // 10
            for i in range(0, len(audio), step):
                chunk = audio[i:i + step]
                if channels == 2:
                    chunk = np.repeat(chunk, 2)  # interleaved stereo
                if encoding in ("ulaw", "alaw"):
                    await ws.send(g711(chunk, encoding))
                else:
                    await ws.send(encode_audio(chunk, encoding))
            await ws.send(p.encode(p.Stop()))
            msgs = await collect(ws)
        (final,) = finals(msgs)
        # "speech 1.xx s rms 0.2xx": the engine got ~1.4 s of 16 kHz audio at the right level.
        words = final.text.split()
        assert 1.0 < float(words[1]) < 2.0, final.text
        assert 0.1 < float(words[4]) < 0.3, final.text
        assert not any(isinstance(m, p.Partial) for m in msgs)

    run(body)


def test_a_client_that_wants_no_words_gets_finals_without_them():
    async def body(server: Server) -> None:
        for words in (True, False):
            async with websockets.connect(ws_url(server)) as ws:
                await ws.send(p.encode(p.Start(RATE, partials=False, words=words)))
                assert isinstance(p.parse_server(await ws.recv()), p.Ready)
                await ws.send(encode_audio(bursts(1), "pcm16"))
                await ws.send(p.encode(p.Stop()))
                (final,) = finals(await collect(ws))
            assert final.text.startswith("speech ")
            assert len(final.words) == (len(final.text.split()) if words else 0), final

    run(body)


def test_ping_pong_and_stop_before_any_speech():
    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server)) as ws:
            # The client offers permessage-deflate (websockets does by default); the server
            # declines it: deflating PCM costs CPU on both sides for little.
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await ws.send(p.encode(p.Ping()))
            assert p.parse_server(await ws.recv()) == p.Pong()
            await stream(ws, silence(0.5))
            await ws.send(p.encode(p.Stop()))
            assert await collect(ws) == [p.Stopped()]
            # A second stream on the same connection.
            await stream(ws, bursts(1))
            await ws.send(p.encode(p.Stop()))
            assert len(finals(await collect(ws))) == 1

    run(body)


async def _expect_error(server: Server, send: list[str | bytes], code: str) -> p.Error:
    async with websockets.connect(ws_url(server)) as ws:
        for item in send:
            await ws.send(item)
        msgs = []
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(5):
                while True:
                    msgs.append(p.parse_server(await ws.recv()))
    errors = [m for m in msgs if isinstance(m, p.Error)]
    assert errors and errors[-1].code == code, msgs
    return errors[-1]


START = p.encode(p.Start(RATE))


@pytest.mark.parametrize("send, code, fragment", [
    (["{not json"], "bad_message", "not valid JSON"),
    (['{"type": "dance"}'], "bad_message", "unknown control message type"),
    ([b"\x00\x01" * 100], "not_started", "before \"start\""),
    (['{"type":"start","sample_rate":8000,"encoding":"opus"}'], "bad_message", "encoding"),
    ([START, b"\x00\x01\x02"], "bad_audio", "even number of bytes"),
    ([START, b"\x00" * 5000], "too_large", "longer than"),
    (['{"type": "stop"}'], "not_started", "before"),
    (["x" * 5000], "too_large", "longer than"),
])
def test_malformed_frames_close_that_session_only(send, code, fragment):
    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server)) as good:
            await stream(good, bursts(1)[:RATE])  # mid-utterance
            error = await _expect_error(server, send, code)
            assert fragment in error.message
            await stream_rest(good)

    async def stream_rest(good: Any) -> None:
        for _ in range(0, 2 * RATE, 1600):
            await good.send(encode_audio(silence(0.1), "pcm16"))
        await good.send(p.encode(p.Stop()))
        msgs = await collect(good)
        assert len(finals(msgs)) == 1 and isinstance(msgs[-1], p.Stopped)

    run(body, max_audio_frame_bytes=4096)


def test_server_busy_beyond_max_sessions():
    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server)) as a, \
                websockets.connect(ws_url(server)) as b:
            # A session takes its place at "start" (a socket that never starts holds none).
            await a.send(p.encode(p.Start(sample_rate=16000)))
            await b.send(p.encode(p.Start(sample_rate=16000)))
            await a.recv(), await b.recv()
            async with websockets.connect(ws_url(server)) as c:
                await c.send(p.encode(p.Ping()))
                assert p.parse_server(await c.recv()) == p.Pong()  # connected, no session
                await c.send(p.encode(p.Start(sample_rate=16000)))
                msg = p.parse_server(await c.recv())
                assert isinstance(msg, p.Error) and msg.code == "server_busy"
                assert "all 2 sessions" in msg.message
                with pytest.raises(websockets.ConnectionClosed) as info:
                    await c.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 1013
        for _ in range(100):
            if server.engine.sessions == 0:
                break
            await asyncio.sleep(0.02)
        async with websockets.connect(ws_url(server)) as d:  # room again
            await d.send(p.encode(p.Start(sample_rate=16000)))
            assert isinstance(p.parse_server(await d.recv()), p.Ready)
        assert server.engine.rejected == 1

    run(body, max_sessions=2)


def test_audio_rate_limit():
    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server)) as fast:
            await stream(fast, silence(1.0))  # 1 s burst allowance: fine
            errors = []
            try:
                for _ in range(30):
                    await fast.send(encode_audio(silence(0.1), "pcm16"))
                    await asyncio.sleep(0.01)  # ~10x real time
            except websockets.ConnectionClosed:
                pass
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(5):
                    while True:  # what the server said before it closed
                        msg = p.parse_server(await fast.recv())
                        if isinstance(msg, p.Error):
                            errors.append(msg)
            (error,) = errors
            assert error.code == "too_fast" and "2 times real time" in error.message
        async with websockets.connect(ws_url(server)) as paced:
            await stream(paced, bursts(1)[: RATE // 2], pace=1.0)  # real time: fine
            await paced.send(p.encode(p.Stop()))
            assert isinstance((await collect(paced))[-1], p.Stopped)

    run(body, max_audio_rate=2.0, audio_burst_s=1.0)


def test_a_client_that_does_not_read_is_disconnected():
    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server), max_queue=1) as ws:
            # Thousands of pings, never reading the pongs: the server's queue for this
            # client (8 messages) overflows and the server drops the connection.
            burst = "".join(p.encode(p.Ping()) for _ in range(1))
            with pytest.raises(websockets.ConnectionClosed):
                for _ in range(20000):
                    await ws.send(burst)
                await ws.recv()
                for _ in range(20000):
                    await ws.recv()
        for _ in range(100):
            if server.engine.sessions == 0 and len(server.connections) == 0:
                break
            await asyncio.sleep(0.02)
        assert server.engine.sessions == 0 and len(server.connections) == 0
        assert server.stats.closed_by_error.get("too_slow") == 1

    run(body, send_queue=8)


def _threads() -> set[str]:
    """Thread names, leaving out the loop's default executor (a bounded, reused pool)."""
    return {t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")}


async def _wait_idle(server: Server, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while len(server.connections) or server.engine.sessions or server.engine.queued \
                or server.engine.in_engine:
            await asyncio.sleep(0.02)


def test_connect_disconnect_cycles_leak_nothing():
    """50 clients that stop cleanly, vanish mid-utterance, send garbage or do not read."""

    async def body(server: Server) -> None:
        audio = bursts(1)
        pcm = [encode_audio(audio[i:i + 1600], "pcm16") for i in range(0, len(audio), 1600)]
        half = pcm[: len(pcm) // 2]
        await _wait_idle(server)
        tasks_before = len(asyncio.all_tasks())
        threads_before = _threads()

        async def one(i: int) -> None:
            kind = i % 5
            try:
                async with websockets.connect(ws_url(server), max_queue=2,
                                              close_timeout=0.2) as ws:
                    await ws.send(START)
                    await ws.recv()
                    if kind == 0:  # a clean stream
                        for chunk in pcm:
                            await ws.send(chunk)
                        await ws.send(p.encode(p.Stop()))
                        assert len(finals(await collect(ws))) == 1
                    elif kind == 1:  # vanishes mid-utterance
                        for chunk in half:
                            await ws.send(chunk)
                    elif kind == 2:  # garbage
                        await ws.send("garbage")
                        await ws.send(b"\x01")
                    elif kind == 3:  # says stop mid-utterance, leaves without reading
                        for chunk in half:
                            await ws.send(chunk)
                        await ws.send(p.encode(p.Stop()))
                    else:  # drops the TCP connection without a close frame
                        for chunk in half:
                            await ws.send(chunk)
                        ws.transport.abort()
            except websockets.ConnectionClosed:
                pass

        for start in range(0, 50, 5):
            await asyncio.gather(*(one(i) for i in range(start, start + 5)))
        await _wait_idle(server)
        for _ in range(100):
            if len(asyncio.all_tasks()) <= tasks_before:
                break
            await asyncio.sleep(0.02)
        assert len(asyncio.all_tasks()) <= tasks_before
        assert _threads() <= threads_before
        assert server.stats.connections_total >= 50
        # The engine is still free: a new stream gets its final quickly.
        async with websockets.connect(ws_url(server)) as ws:
            await stream(ws, bursts(1))
            await ws.send(p.encode(p.Stop()))
            assert len(finals(await collect(ws, timeout=5))) == 1

    run(body, realtime=RealtimeConfig(partial_interval_ms=200))


def test_shutdown_finishes_in_flight_finals():
    async def main() -> None:
        server = Server(config(engine=EngineConfig(engine="scripted",
                                                   options={"delay_s": 0.3})))
        await server.start()
        async with websockets.connect(ws_url(server)) as ws:
            audio = bursts(1)
            await stream(ws, audio[: int(1.2 * RATE)])  # still speaking: no stop sent
            await asyncio.sleep(0.1)
            closing = asyncio.ensure_future(server.close(drain_timeout=5))
            msgs: list[Any] = []
            with pytest.raises(websockets.ConnectionClosed) as info:
                async with asyncio.timeout(8):
                    while True:
                        msgs.append(p.parse_server(await ws.recv()))
            await closing
        assert len(finals(msgs)) == 1, msgs
        assert any(isinstance(m, p.Stopped) for m in msgs)
        assert isinstance(msgs[-1], p.Error) and msgs[-1].code == "shutting_down"
        assert info.value.rcvd is not None and info.value.rcvd.code == 1012  # reconnect

    asyncio.run(main())


def test_health_and_metrics():
    async def body(server: Server) -> None:
        import aiohttp

        async with websockets.connect(ws_url(server)) as ws:
            await stream(ws, bursts(2))
            await ws.send(p.encode(p.Stop()))
            await collect(ws)
            async with aiohttp.ClientSession() as http:
                async with http.get(server.url + "/health") as r:
                    assert r.status == 200
                    health = await r.json()
                async with http.get(server.url + "/metrics") as r:
                    assert r.status == 200 and r.content_type == "text/plain"
                    text = await r.text()
        assert health["status"] == "ok" and health["sessions"] == 1
        assert health["engine"]["engine"] == "scripted"
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        assert values["harken_sessions"] == 1
        assert values["harken_engine_queue_depth"] == 0
        assert values['harken_engine_requests_total{kind="final"}'] == 2
        assert values['harken_engine_latency_seconds_count{kind="final"}'] == 2
        assert values['harken_engine_latency_seconds_bucket{kind="final",le="+Inf"}'] == 2
        assert values["harken_engine_audio_seconds_total"] > 2.0
        assert 0 < values["harken_engine_rtf"] < 1
        assert values["harken_finals_sent_total"] == 2
        assert "# TYPE harken_engine_latency_seconds histogram" in text

    run(body)


def test_json_encoding_of_messages_is_what_clients_see():
    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server)) as ws:
            await ws.send(json.dumps({"type": "start", "sample_rate": 16000}))
            assert json.loads(await ws.recv())["type"] == "ready"

    run(body)


def test_health_counts_the_websockets_of_every_protocol():
    """/v1/stream, /v1/realtime and RealtimeSTT's control and data sockets all count."""

    async def counts(server: Server) -> tuple[int, float]:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/health") as r:
                health = await r.json()
            async with http.get(server.url + "/metrics") as r:
                text = await r.text()
        gauge = next(line for line in text.splitlines()
                     if line.startswith("harken_websocket_connections "))
        return health["connections"], float(gauge.rsplit(" ", 1)[1])

    async def until(server: Server, n: int) -> tuple[int, float]:
        async with asyncio.timeout(5):
            while (got := await counts(server))[0] != n:
                await asyncio.sleep(0.02)
        return got

    async def body(server: Server) -> None:
        base = ws_base(server)
        assert await counts(server) == (0, 0.0)
        async with websockets.connect(ws_url(server)) as stream_ws, \
                websockets.connect(base + "/v1/realtime?intent=transcription") as realtime, \
                websockets.connect(base + "/rtstt/control") as control, \
                websockets.connect(base + "/rtstt/data") as data:
            await stream_ws.send(p.encode(p.Ping()))
            assert p.parse_server(await stream_ws.recv()) == p.Pong()
            assert json.loads(await realtime.recv())["type"] == "session.created"
            await control.send(json.dumps({"command": "get_parameter",
                                           "parameter": "language"}))
            assert json.loads(await control.recv())["status"] == "success"
            assert data.state.name == "OPEN"
            assert await until(server, 4) == (4, 4.0)
            assert len(server.connections) == 4
            await realtime.close()
            assert await until(server, 3) == (3, 3.0)
        assert await until(server, 0) == (0, 0.0)

    run(body)


class _CrashingEngine:
    """An engine runner that never answers; the test makes it fail for good."""

    def __init__(self, on_result: Any, on_failed: Any, on_error: Any) -> None:
        self.on_error = on_error
        self.restarts = 0
        self.ready_info: dict[str, Any] = {"engine": "fake"}

    def start(self) -> None:
        pass

    def submit(self, request: Any) -> None:
        pass

    def cancel(self, request_id: int) -> None:
        pass

    def close(self, timeout: float = 2.0) -> None:
        pass


def test_a_fatal_engine_error_reaches_every_protocol_then_closes_with_1011():
    """Each client gets its protocol's error message before the close frame (code 1011)."""
    from harken.errors import WorkerCrashed

    engines: list[_CrashingEngine] = []

    def factory(*callbacks: Any) -> _CrashingEngine:
        engines.append(_CrashingEngine(*callbacks))
        return engines[-1]

    async def until_closed(ws: Any) -> tuple[list[Any], int | None]:
        got: list[Any] = []
        with pytest.raises(websockets.ConnectionClosed) as info:
            async with asyncio.timeout(5):
                while True:
                    got.append(json.loads(await ws.recv()))
        return got, info.value.rcvd.code if info.value.rcvd is not None else None

    async def main() -> None:
        async with Server(config(), engine_factory=factory) as server:
            base = ws_base(server)
            async with websockets.connect(ws_url(server)) as ours, \
                    websockets.connect(base + "/v1/realtime?intent=transcription") as rt, \
                    websockets.connect(base + "/rtstt/data") as data:
                await stream(ours, silence(0.2))
                assert json.loads(await rt.recv())["type"] == "session.created"
                header = b'{"sampleRate": 16000}'
                await data.send(len(header).to_bytes(4, "little") + header + b"\0\0" * 160)
                assert json.loads(await data.recv()) == {"type": "vad_detect_start"}
                engines[0].on_error(WorkerCrashed("the engine process is gone"), True)
                (ours_got, ours_code), (rt_got, rt_code), (data_got, data_code) = \
                    await asyncio.gather(until_closed(ours), until_closed(rt),
                                         until_closed(data))
        assert ours_code == rt_code == data_code == 1011
        assert ours_got[-1]["type"] == "error" and ours_got[-1]["code"] == "engine_error"
        assert rt_got[-1]["type"] == "error"
        assert rt_got[-1]["error"]["code"] == "engine_error"
        assert rt_got[-1]["error"]["type"] == "server_error"
        assert data_got[-1] == {"type": "error", "code": "engine",
                                "message": data_got[-1]["message"]}
        assert "gone" in ours_got[-1]["message"] and "gone" in data_got[-1]["message"]
        assert server.stats.closed_by_error.get("engine_error") == 1  # the realtime one

    asyncio.run(main())


def test_audio_pace_and_oversize_messages():
    from harken.server.connection_base import AudioPace, oversize

    assert AudioPace(None, 1.0).check(1e9) is None
    pace = AudioPace(2.0, 1.0)
    assert pace.check(1.0) is None  # the burst allowance, at once
    message = pace.check(1.5)
    assert message is not None and message.startswith(
        "audio arrives faster than 2 times real time (1.5 s of audio in ")
    assert oversize("audio frame", 10, 10) is None
    assert oversize("audio frame", 11, 10) == \
        "audio frame of 11 bytes is longer than the 10 bytes accepted"
