"""OpenAI Realtime transcription sessions (GET /v1/realtime), driven by the openai package.

A real :class:`~harken.server.app.Server` on 127.0.0.1 (a real engine process with the
scripted engine, energy VAD) on the test's event loop; the official ``openai`` client's
``realtime.connect`` is the client, with raw ``websockets`` for the beta dialect and for
malformed input. The model test runs the real tiny.en and the real VAD on espeak speech.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets
from server_helpers import bursts, config, silence, tone, ws_base
from server_helpers import run as run_server

from harken.audio.convert import float32_to_pcm16
from harken.config import EngineConfig, RealtimeConfig, VadConfig
from harken.server.app import Server
from harken.server.monitor import snapshot
from harken.server.openai_realtime import (
    EventError,
    RealtimeSettings,
    parse_session_update,
    render_session,
)

openai = pytest.importorskip("openai")

RATE = 24000
TEXT = "hello there world"
COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"
FAILED = "conversation.item.input_audio_transcription.failed"
SCRIPTED = EngineConfig(engine="scripted", options={"text": TEXT})


_MODELS: dict[bool, dict[str, Any]] = {}


def _event_models(beta: bool) -> dict[str, Any]:
    """Event type -> the openai package's model of it, from its server event union."""
    if beta not in _MODELS:
        import typing

        if beta:
            from openai.types.beta.realtime import RealtimeServerEvent as union
        else:
            from openai.types.realtime import RealtimeServerEvent as union
        members = typing.get_args(typing.get_args(union)[0])
        _MODELS[beta] = {typing.get_args(m.model_fields["type"].annotation)[0]: m
                         for m in members}
    return _MODELS[beta]


def checked(data: str | bytes, beta: bool = False) -> dict[str, Any]:
    """The event ``data`` as a dict, after the openai package's own event models accepted it.

    Every server event a test receives passes through here: an event type that is not in
    the package's server event union, a missing field or a value of the wrong type fails
    the test. The beta union has no ``transcription_session.created``; that event is
    checked with the model of ``transcription_session.updated``, which carries the same
    session object.
    """
    event = json.loads(data)
    assert isinstance(event, dict), event
    kind = event.get("type")
    if beta and kind == "transcription_session.created":
        kind = "transcription_session.updated"
    model = _event_models(beta).get(kind)
    assert model is not None, f"not a {'beta ' if beta else ''}Realtime server event: {event}"
    model.model_validate({**event, "type": kind})
    return event


async def recv(conn: Any) -> Any:
    """The openai connection's next event, checked (see :func:`checked`)."""
    data = await conn.recv_bytes()
    checked(data)
    return conn.parse_event(data)


async def ws_recv(ws: Any, beta: bool = False) -> dict[str, Any]:
    """A raw WebSocket's next event, checked (see :func:`checked`)."""
    return checked(await ws.recv(), beta)


def b64(audio: np.ndarray) -> str:
    return base64.b64encode(bytes(float32_to_pcm16(audio))).decode()


def run(body: Callable[[Server], Awaitable[None]], **kw: Any) -> None:
    """``server_helpers.run`` with the scripted engine saying TEXT."""
    kw.setdefault("engine", SCRIPTED)
    run_server(body, **kw)


def connect(server: Server) -> Any:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
    return client.realtime.connect(extra_query={"intent": "transcription"})


def ws_url(server: Server) -> str:
    return ws_base(server) + "/v1/realtime?intent=transcription"


async def send_audio(conn: Any, audio: np.ndarray, chunk_s: float = 0.1,
                     pace: float = 0.5, rate: int = RATE) -> None:
    step = int(chunk_s * rate)
    for i in range(0, len(audio), step):
        await conn.input_audio_buffer.append(audio=b64(audio[i:i + step]))
        if pace:
            await asyncio.sleep(chunk_s * pace)


async def events_until(conn: Any, done: Callable[[list[Any]], bool],
                       timeout: float = 15.0) -> list[Any]:
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        while not done(out):
            out.append(await recv(conn))
    return out


def item_of(event: Any) -> str | None:
    """The id of the item an event is about (None for session and error events)."""
    item = getattr(event, "item", None)
    return item.id if item is not None else getattr(event, "item_id", None)


def count(kind: str) -> Callable[[list[Any]], Callable[[list[Any]], bool]]:
    def at_least(n: int) -> Callable[[list[Any]], bool]:
        return lambda evs: sum(e.type == kind for e in evs) >= n
    return at_least  # type: ignore[return-value]


async def raw_until(ws: Any, kind: str, timeout: float = 10.0,
                    beta: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not out or out[-1]["type"] != kind:
            out.append(await ws_recv(ws, beta))
    return out


async def wait_idle(server: Server, timeout: float = 5.0) -> dict[str, Any]:
    """Poll health() until no session and no connection task is left."""
    baseline = server.health()["tasks"]
    health = server.health()
    async with asyncio.timeout(timeout):
        while True:
            health = server.health()
            if health["sessions"] == 0 and health["queue_depth"] == 0 and \
                    health["in_engine"] == 0:
                return health
            await asyncio.sleep(0.05)
    return {"baseline": baseline, **health}  # pragma: no cover


# ---------------------------------------------------------------- openai client, scripted


@pytest.mark.parametrize("early", [False, True], ids=["held", "stable_prefix"])
def test_server_vad_event_sequence_with_the_openai_client(early: bool):
    async def body(server: Server) -> None:
        async with connect(server) as conn:
            created = await recv(conn)
            assert created.type == "session.created"
            fmt = created.session.audio.input.format
            assert (fmt.type, fmt.rate) == ("audio/pcm", 24000)
            assert created.session.audio.input.turn_detection.type == "server_vad"
            await conn.session.update(session={
                "type": "transcription",
                "include": ["item.input_audio_transcription.logprobs"],
                "audio": {"input": {
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                    "noise_reduction": {"type": "near_field"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 400,
                                       "prefix_padding_ms": 200}}}})
            updated = await recv(conn)
            assert updated.type == "session.updated"
            audio_in = updated.session.audio.input
            td = audio_in.turn_detection
            assert (td.silence_duration_ms, td.prefix_padding_ms) == (400, 200)
            assert audio_in.transcription.language == "en"
            assert audio_in.noise_reduction.type == "near_field"
            assert updated.session.include == ["item.input_audio_transcription.logprobs"]
            sender = asyncio.create_task(send_audio(conn, bursts(2, RATE)))
            events = await events_until(conn, count("conversation.item.done")(2))
            await sender
            # The operator view lists the session with its last final and measured E2F.
            rows = snapshot(server, time.monotonic())["connections"]
        assert [(r["protocol"], r["last_final"], r["finals"]) for r in rows] == \
            [("openai-realtime", TEXT, 2)]
        assert 0 < rows[0]["e2f_s"] < 5, rows
        kinds = [e.type for e in events]
        items = list(dict.fromkeys(item_of(e) for e in events))
        assert len(items) == 2, kinds
        previous = None
        for n, item in enumerate(items):
            mine = [e for e in events if item_of(e) == item]
            order = [e.type for e in mine if e.type != DELTA]
            assert order == ["input_audio_buffer.speech_started",
                             "input_audio_buffer.speech_stopped",
                             "input_audio_buffer.committed", "conversation.item.added",
                             COMPLETED, "conversation.item.done"], order
            started, stopped, committed, added, completed, done = (
                e for e in mine if e.type != DELTA)
            # Stream times in ms: tone n starts at 0.3 + 1.8 n s, minus 200 ms of padding.
            assert abs(started.audio_start_ms - (100 + 1800 * n)) <= 70
            assert abs(stopped.audio_end_ms - (1300 + 1800 * n)) <= 70
            assert committed.previous_item_id == previous
            assert added.previous_item_id == done.previous_item_id == previous
            assert (added.item.role, added.item.status) == ("user", "in_progress")
            assert added.item.content[0].type == "input_audio"
            assert added.item.content[0].transcript is None
            assert done.item.status == "completed"
            assert done.item.content[0].transcript == TEXT
            previous = item
            assert completed.transcript == TEXT
            assert completed.usage.type == "duration" and completed.usage.seconds > 0.9
            # The scripted engine's words, each with log(probability) (1.0 in the script).
            assert [p.token for p in completed.logprobs] == ["hello", " there", " world"]
            assert all(p.logprob == 0.0 and
                       bytes(p.bytes) == p.token.encode() for p in completed.logprobs)
            deltas = [e for e in mine if e.type == DELTA]
            assert "".join(e.delta for e in deltas) == TEXT  # they add up to the transcript
            tokens = [p.token for e in deltas for p in e.logprobs]
            # Early stable words come from partial passes, which have no probabilities.
            assert tokens == [p.token for p in completed.logprobs][-len(tokens):] and \
                (early or len(tokens) == 3)
            first_delta = mine.index(deltas[0])
            if early:
                # The final pass continues from the stable words, so they went out while
                # the person spoke (before the stop).
                assert first_delta < mine.index(stopped)
            else:
                # Stable words the final may still rewrite are held until it comes.
                assert mine.index(stopped) < first_delta < mine.index(completed)
        assert server.stats.finals_sent == 2

    run(body, openai_realtime=RealtimeConfig(stable_min_ms=0, stable_prefix=early))


def test_pause_pieces_send_the_first_part_of_an_utterance_while_it_goes_on():
    async def body(server: Server) -> None:
        async with connect(server) as conn:
            await recv(conn)
            audio = np.concatenate([silence(0.3, RATE), tone(1.0, RATE), silence(0.3, RATE),
                                    tone(1.0, RATE), silence(0.8, RATE)])
            sender = asyncio.create_task(send_audio(conn, audio))
            events = await events_until(conn, count("conversation.item.done")(1))
            await sender
        kinds = [e.type for e in events]
        assert kinds.count("input_audio_buffer.committed") == 1  # one utterance, one item
        deltas = [e for e in events if e.type == DELTA]
        assert [e.delta for e in deltas] == [TEXT, " " + TEXT]
        # The first piece was final before the person stopped speaking.
        assert kinds.index(DELTA) < kinds.index("input_audio_buffer.speech_stopped")
        completed = next(e for e in events if e.type == COMPLETED)
        assert completed.transcript == f"{TEXT} {TEXT}"

    run(body, openai_realtime=RealtimeConfig(stable_min_ms=0, pause_pieces_ms=800))


def test_manual_commit_and_clear_with_the_openai_client():
    async def body(server: Server) -> None:
        async with connect(server) as conn:
            await recv(conn)  # session.created
            await conn.session.update(session={"type": "transcription", "audio": {
                "input": {"turn_detection": None}}})
            updated = await recv(conn)
            assert updated.session.audio.input.turn_detection is None
            # Two utterances in one buffer make one item; no VAD events are sent.
            await send_audio(conn, bursts(2, RATE), pace=0.2)
            # The first utterance's final is part of the item's transcript as it is: its
            # text goes out before the client commits.
            early = await events_until(conn, count(DELTA)(1))
            await conn.input_audio_buffer.commit()
            events = early + await events_until(conn, count("conversation.item.done")(1))
            kinds = [e.type for e in events]
            assert "input_audio_buffer.speech_started" not in kinds
            committed = next(e for e in events if e.type == "input_audio_buffer.committed")
            completed = events[-2]
            assert completed.item_id == committed.item_id
            assert completed.transcript == f"{TEXT} {TEXT}"
            deltas = [e for e in events if e.type == DELTA]
            assert [e.delta for e in deltas] == [TEXT, " " + TEXT]
            # Nothing appended since: OpenAI's error, and the session goes on.
            await conn.input_audio_buffer.commit(event_id="ev_empty")
            error = await recv(conn)
            assert error.type == "error"
            assert error.error.code == "input_audio_buffer_commit_empty"
            assert error.error.event_id == "ev_empty"
            # Cleared audio is never transcribed: a commit after the clear holds only what
            # came later (one utterance, cut mid-speech by the commit).
            await send_audio(conn, np.concatenate([silence(0.2, RATE), tone(0.8, RATE)]), pace=0)
            await conn.input_audio_buffer.clear()
            cleared = await events_until(conn, count("input_audio_buffer.cleared")(1))
            assert [e.type for e in cleared][-1] == "input_audio_buffer.cleared"
            await send_audio(conn, np.concatenate([silence(0.2, RATE), tone(0.8, RATE)]), pace=0)
            await conn.input_audio_buffer.commit()
            events = await events_until(conn, count("conversation.item.done")(1))
            completed = events[-2]
            assert completed.transcript == TEXT
            assert abs(completed.usage.seconds - 1.0) < 0.05  # the cleared second is not in it
            assert sum(e.type == COMPLETED for e in events) == 1

    run(body)


def test_beta_dialect_with_g711_ulaw_at_8khz():
    from harken.audio.convert import ulaw_to_float32

    table = ulaw_to_float32(bytes(range(256)))
    audio = bursts(1, 8000)
    ulaw = np.abs(audio[:, None] - table[None, :]).argmin(axis=1).astype(np.uint8).tobytes()

    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server),
                                      additional_headers={"OpenAI-Beta": "realtime=v1"}) as ws:
            created = await ws_recv(ws, beta=True)
            assert created["type"] == "transcription_session.created"
            assert created["session"]["input_audio_format"] == "pcm16"
            await ws.send(json.dumps({"type": "transcription_session.update", "session": {
                "input_audio_format": "g711_ulaw",
                "input_audio_transcription": {"model": "whisper-1", "language": "en"}}}))
            updated = await ws_recv(ws, beta=True)
            assert updated["type"] == "transcription_session.updated"
            assert updated["session"]["input_audio_format"] == "g711_ulaw"
            step = 800
            for i in range(0, len(ulaw), step):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(ulaw[i:i + step]).decode()}))
                await asyncio.sleep(0.05)
            events = await raw_until(ws, COMPLETED, beta=True)
        stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
        kinds = [e["type"] for e in events]
        assert kinds.index("input_audio_buffer.committed") + 1 == \
            kinds.index("conversation.item.created")
        assert abs(stopped["audio_end_ms"] - 1300) <= 70  # 8 kHz time, counted right
        assert events[-1]["transcript"] == TEXT

    run(body)


def test_malformed_events_get_openai_errors_and_the_session_goes_on():
    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server)) as ws:
            assert (await ws_recv(ws))["type"] == "session.created"
            bad = [
                ("{not json", "invalid_json", None, None),
                (json.dumps([1, 2]), "invalid_event", None, None),
                (json.dumps({"type": "response.create", "event_id": "e1"}),
                 "invalid_event", "type", "e1"),
                (json.dumps({"type": "input_audio_buffer.append", "audio": "%%%not base64",
                             "event_id": "e2"}), "invalid_value", "audio", "e2"),
                (json.dumps({"type": "input_audio_buffer.append", "audio": 5}),
                 "invalid_value", "audio", None),
                (json.dumps({"type": "input_audio_buffer.append",
                             "audio": base64.b64encode(b"\x01\x02\x03").decode()}),
                 "invalid_value", "audio", None),  # pcm16 needs whole samples
                (json.dumps({"type": "session.update", "session": {
                    "type": "transcription",
                    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 1}}}}}),
                 "invalid_value", "session.audio.input.format.rate", None),
                (json.dumps({"type": "session.update", "session": {"type": "realtime"}}),
                 "invalid_value", "session.type", None),
                (json.dumps({"type": "input_audio_buffer.commit"}),
                 "input_audio_buffer_commit_empty", None, None),
            ]
            for text, code, param, event_id in bad:
                await ws.send(text)
                error = await ws_recv(ws)
                assert error["type"] == "error", text
                detail = error["error"]
                assert (detail["code"], detail["param"], detail["event_id"]) == \
                    (code, param, event_id), (text, detail)
                assert detail["type"] == "invalid_request_error" and detail["message"]
            await ws.send(b"\x00\x01")
            assert (await ws_recv(ws))["error"]["code"] == "invalid_event"
            # Still alive: a good update is answered and speech is transcribed.
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "transcription", "audio": {"input": {"format": {
                    "type": "audio/pcm", "rate": 16000}}}}}))
            updated = await ws_recv(ws)
            assert updated["session"]["audio"]["input"]["format"]["harken_rate"] == 16000
            audio = bursts(1, 16000)
            for i in range(0, len(audio), 1600):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": b64(audio[i:i + 1600])}))
            events = await raw_until(ws, COMPLETED)
            assert events[-1]["transcript"] == TEXT

    run(body)


def test_endless_garbage_oversize_and_too_fast_audio_close_the_connection():
    async def body(server: Server) -> None:
        async with websockets.connect(ws_url(server)) as ws:
            await ws.recv()
            for _ in range(40):
                await ws.send("garbage")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        for seconds in (0.6875, 2.0):  # 33000 bytes > 32000; 96000 bytes, over the socket's
            async with websockets.connect(ws_url(server)) as ws:  # message limit too
                await ws.recv()
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": b64(tone(seconds, RATE))}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    error = await ws_recv(ws)
                    assert error["error"]["code"] == "too_large"
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        async with websockets.connect(ws_url(server)) as ws:
            await ws.recv()
            with pytest.raises(websockets.ConnectionClosed):
                for _ in range(40):  # 0.5 s each, at once: far beyond 1x real time + 1 s
                    await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                              "audio": b64(silence(0.5, RATE))}))
                    await asyncio.sleep(0.001)
                while True:
                    message = await ws_recv(ws)
                    if message["type"] == "error":
                        assert message["error"]["code"] == "too_fast"
        assert server.stats.closed_by_error.get("too_fast") == 1
        assert server.stats.closed_by_error.get("too_many_errors") == 1
        await wait_idle(server)

    run(body, max_audio_frame_bytes=32000, max_audio_rate=1.0, audio_burst_s=1.0)


def test_disconnect_mid_utterance_leaves_no_session_or_task():
    async def body(server: Server) -> None:
        tasks_before = server.health()["tasks"]
        async with connect(server) as conn:
            await recv(conn)
            # Speech that never ends, with slow partials in the engine when we leave.
            await send_audio(conn, np.concatenate([silence(0.3, RATE), tone(2.0, RATE)]), pace=0.3)
            await events_until(conn, count("input_audio_buffer.speech_started")(1))
            assert server.health()["sessions"] == 1
        health = await wait_idle(server)
        assert health["sessions"] == 0 and health["connections"] == 0
        async with asyncio.timeout(5):
            while server.health()["tasks"] > tasks_before:
                await asyncio.sleep(0.05)

    run(body, engine=EngineConfig(engine="scripted", options={"text": TEXT, "delay_s": 0.3}))


def test_server_shutdown_finishes_the_transcript_then_closes():
    async def main() -> None:
        server = Server(config(engine=SCRIPTED))
        await server.start()
        try:
            async with connect(server) as conn:
                await recv(conn)
                await send_audio(conn, np.concatenate([silence(0.3, RATE), tone(1.0, RATE)]),
                                 pace=0)
                await events_until(conn, count("input_audio_buffer.speech_started")(1))
                closing = asyncio.create_task(server.close(drain_timeout=5.0))
                events: list[Any] = []
                async with asyncio.timeout(10):
                    async for event in conn:  # ends when the server closes (1001: OK)
                        events.append(event)
                kinds = [e.type for e in events]
                assert COMPLETED in kinds, kinds  # the open utterance was transcribed
                assert events[-1].type == "error" and \
                    events[-1].error.code == "shutting_down"
                async with asyncio.timeout(10):
                    await closing
        finally:
            await server.close()

    asyncio.run(main())


def test_format_change_mid_session_keeps_the_items_already_spoken():
    async def body(server: Server) -> None:
        async with connect(server) as conn:
            await recv(conn)
            # One utterance at 24 kHz whose silence has not ended yet...
            await send_audio(conn, np.concatenate([silence(0.3, RATE), tone(1.0, RATE),
                                                   silence(0.2, RATE)]), pace=0)
            await events_until(conn, count("input_audio_buffer.speech_started")(1))
            # ...then the client switches to 16 kHz: the open utterance is finished first.
            await conn.session.update(session={"type": "transcription", "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": 16000}}}})
            await send_audio(conn, bursts(1, 16000), pace=0, rate=16000)
            events = await events_until(conn, count(COMPLETED)(2))
        kinds = [e.type for e in events]
        assert kinds.index("session.updated") > kinds.index("input_audio_buffer.committed")
        done = [e for e in events if e.type == COMPLETED]
        assert [e.transcript for e in done] == [TEXT, TEXT]
        assert done[0].item_id != done[1].item_id
        # Times go on counting from the connection's start: 1.5 s of 24 kHz audio before.
        started = [e for e in events if e.type == "input_audio_buffer.speech_started"]
        assert abs(started[-1].audio_start_ms - 1500) <= 70

    run(body)


def test_a_final_the_engine_cannot_transcribe_fails_its_item_only():
    async def body(server: Server) -> None:
        async with connect(server) as conn:
            await recv(conn)
            audio = np.concatenate([silence(0.3, RATE), tone(2.0, RATE), silence(0.8, RATE),
                                    tone(1.0, RATE), silence(0.8, RATE)])
            sender = asyncio.create_task(send_audio(conn, audio, pace=0))
            events = await events_until(conn, count("conversation.item.done")(2))
            await sender
        items = [e.item_id for e in events if e.type == "input_audio_buffer.committed"]
        failed = next(e for e in events if e.type == FAILED)
        completed = next(e for e in events if e.type == COMPLETED)
        assert (failed.item_id, completed.item_id) == tuple(items)
        assert "scripted failure" in failed.error.message
        assert completed.transcript == TEXT
        done = [e.item for e in events if e.type == "conversation.item.done"]
        assert [(d.id, d.status) for d in done] == [(items[0], "incomplete"),
                                                    (items[1], "completed")]
        assert done[0].content[0].transcript is None

    # Audio of 2 s or more fails (the 2 s utterance with its pre-roll); partials, shorter
    # while the person speaks, are simply not shown.
    run(body, engine=EngineConfig(engine="scripted",
                                  options={"text": TEXT, "fail_min_s": 2.0}))


# ---------------------------------------------------------------- settings (pure)


def test_session_update_parsing_and_rendering():
    base = RealtimeSettings.defaults(VadConfig())
    ga = parse_session_update(base, {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcmu"}, "turn_detection": None}}}, beta=False)
    assert (ga.encoding, ga.sample_rate, ga.server_vad) == ("ulaw", 8000, False)
    assert render_session(ga, "s", beta=False)["audio"]["input"]["format"] == \
        {"type": "audio/pcmu"}
    beta = parse_session_update(base, {"input_audio_format": "g711_alaw", "turn_detection": {
        "type": "server_vad", "silence_duration_ms": 700}}, beta=True)
    assert (beta.encoding, beta.sample_rate, beta.silence_duration_ms) == ("alaw", 8000, 700)
    assert beta.vad_config(VadConfig()).post_speech_silence_ms == 700
    assert render_session(beta, "s", beta=True)["input_audio_format"] == "g711_alaw"
    # Absent fields do not change; semantic VAD is harken's smart end of turn.
    same = parse_session_update(beta, {"turn_detection": {"type": "semantic_vad",
                                                          "eagerness": "high"}}, beta=True)
    assert same.encoding == "alaw" and same.server_vad
    smart = same.vad_config(VadConfig())
    assert (smart.turn_detection, smart.turn_eagerness) == ("smart", "high")
    assert smart.min_silence_ms <= smart.post_speech_silence_ms <= smart.max_silence_ms
    assert same.vad_config(VadConfig(), smart=False).turn_detection == "fixed"
    assert render_session(same, "s", beta=True)["turn_detection"] == {
        "type": "semantic_vad", "eagerness": "high"}
    back = parse_session_update(same, {"turn_detection": {"type": "server_vad"}}, beta=True)
    assert back.vad_config(VadConfig()).turn_detection == "fixed"
    # Word timings (the alignment pass) only for a client that asked for logprobs; asking
    # later begins a new stream with them.
    assert base.decode_hints().word_timestamps is False
    logprobs = parse_session_update(base, {"include": [
        "item.input_audio_transcription.logprobs"]}, beta=True)
    assert logprobs.decode_hints().word_timestamps is None  # the engine's setting (on)
    assert logprobs.restart_key() != base.restart_key()
    for session, param in [
        ({"input_audio_format": "mp3"}, "session.input_audio_format"),
        ({"turn_detection": {"type": "server_vad", "silence_duration_ms": -1}},
         "session.turn_detection.silence_duration_ms"),
        ({"turn_detection": {"type": "push_to_talk"}}, "session.turn_detection.type"),
        ({"turn_detection": {"type": "semantic_vad", "eagerness": "eager"}},
         "session.turn_detection.eagerness"),
        ({"input_audio_transcription": {"language": 7}},
         "session.input_audio_transcription.language"),
        ("nope", "session"),
    ]:
        with pytest.raises(EventError) as info:
            parse_session_update(base, session, beta=True)
        assert info.value.param == param


def test_a_plain_http_get_or_another_intent_is_refused():
    async def body(server: Server) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/v1/realtime") as response:
                assert response.status == 400
                assert "WebSocket" in (await response.json())["error"]["message"]
            async with http.get(server.url + "/v1/realtime?intent=conversation") as response:
                assert response.status == 400
                assert (await response.json())["error"]["param"] == "intent"

    run(body)


# ---------------------------------------------------------------- real model


SENTENCES = [
    "Please send the report to the whole team before Friday.",
    "Letters of your party's first name.",
    "To remove the participant who most recently joined the conference, press nine.",
    "The meeting has been moved to three thirty tomorrow afternoon.",
    "Press one to repeat this message or two to return to the main menu.",
    "Your call is important to us, please stay on the line.",
    "The weather will be cloudy with a chance of rain in the evening.",
    "Say the name of the person you would like to call.",
    "Thank you for calling, goodbye.",
]


def _settled(events: list[Any]) -> bool:
    """Every committed item has had its conversation.item.done."""
    return sum(e.type == "input_audio_buffer.committed" for e in events) == \
        sum(e.type == "conversation.item.done" for e in events)


@pytest.mark.model
def test_real_speech_deltas_add_up_to_every_completed_transcript(espeak):
    """21 utterances (the tests/data recordings and espeak sentences) over one connection
    of the openai client, pushed at about 4x real time to real tiny.en and the real VAD:
    every item's deltas concatenate to its completed transcript, and every event parses
    with the openai package's models. With the server's default settings, which send the
    stable words early and bind the final to them."""
    import soxr

    from harken.sources.file import read_audio
    from harken.testing import word_errors

    data = Path(__file__).resolve().parent.parent / "data"
    clips = [read_audio(str(wav)) for wav in sorted(data.glob("*.wav"))]
    clips += [espeak(sentence) for sentence in SENTENCES]
    parts = [silence(0.5, 16000)]
    for clip in clips:
        parts += [clip.astype(np.float32), silence(1.2, 16000)]
    audio = soxr.resample(np.concatenate(parts), 16000, RATE).astype(np.float32)

    async def body(server: Server) -> None:
        async with connect(server) as conn:
            await recv(conn)
            await conn.session.update(session={
                "type": "transcription", "include": ["item.input_audio_transcription.logprobs"],
                "audio": {"input": {"transcription": {"model": "whisper-1", "language": "en"}}}})
            await recv(conn)
            sender = asyncio.create_task(send_audio(conn, audio, chunk_s=0.2, pace=0.25))
            events: list[Any] = []
            try:
                while True:  # until the stream is sent and every committed item is done
                    try:
                        async with asyncio.timeout(10 if sender.done() else 20):
                            events.append(await recv(conn))
                    except TimeoutError:
                        # The VAD may cut the stream into fewer items than clips (two
                        # clips heard as one): quiet after the last audio, with every
                        # committed item done, is the end; an item never done is not.
                        if sender.done() and _settled(events):
                            break
                        raise
                    if sender.done() and _settled(events) and \
                            sum(e.type == "conversation.item.done" for e in events) >= len(clips):
                        break
            finally:
                await sender
        completed = [e for e in events if e.type == COMPLETED]
        assert len(completed) >= 20
        for item in completed:
            deltas = "".join(e.delta for e in events
                             if e.type == DELTA and e.item_id == item.item_id)
            assert deltas == item.transcript, (deltas, item.transcript)
            assert item.logprobs and all(p.logprob <= 0 for p in item.logprobs)
        said = " ".join(e.transcript for e in completed[-len(SENTENCES):])
        errors, words = word_errors(" ".join(SENTENCES), said)
        assert errors / words <= 0.35, said

    run(body, engine=EngineConfig(), vad=VadConfig())


@pytest.mark.model
def test_semantic_vad_holds_a_mid_thought_pause_over_the_openai_client(espeak):
    """semantic_vad is harken's smart end of turn: a speaker who stops after "to" for
    0.9 s is one item (server_vad, 500 ms of silence, makes two of it)."""
    import soxr

    def part(text: str) -> np.ndarray:
        x = espeak(text)
        loud = np.flatnonzero(np.abs(x) > 0.01)
        return soxr.resample(x[loud[0]:loud[-1] + 1], 16000, RATE).astype(np.float32)

    audio = np.concatenate([silence(0.5, RATE), part("Can you send the report to"),
                            silence(0.9, RATE), part("Michael before the meeting?"),
                            silence(2.0, RATE)])

    async def body(server: Server) -> None:
        async with connect(server) as conn:
            await conn.recv()
            await conn.session.update(session={"type": "transcription", "audio": {"input": {
                "turn_detection": {"type": "semantic_vad", "eagerness": "auto"}}}})
            updated = await conn.recv()
            assert updated.session.audio.input.turn_detection.type == "semantic_vad"
            sender = asyncio.create_task(send_audio(conn, audio, pace=1.0))
            events = await events_until(conn, count(COMPLETED)(1), timeout=40)
            await sender
        completed = [e for e in events if e.type == COMPLETED]
        assert "michael" in completed[0].transcript.lower(), completed[0].transcript

    # A busy machine may take over a second for the early final's words: wait up to 3 s.
    run(body, engine=EngineConfig(), vad=VadConfig(max_silence_ms=3000),
        openai_realtime=RealtimeConfig())
