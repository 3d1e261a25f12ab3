"""RealtimeSTT's server protocol on the harken server, with RealtimeSTT's own client.

The fast tests run a real server (a real engine process with the scripted engine, energy
VAD) and talk to it with raw ``websockets`` clients, so every message name and field is
checked exactly, and with RealtimeSTT's real ``AudioToTextRecorderClient``. The model test
streams espeak speech through that client to the real tiny.en model.

RealtimeSTT's client is installed with ``pip install --no-deps RealtimeSTT==1.1.2`` plus
``websocket-client`` (scripts/test): its package pulls torch otherwise. Its module imports
``RealtimeSTT.audio_input`` (PyAudio, SciPy, colorama) for the microphone only; where those
are missing the tests put a stub in its place that refuses to open a microphone, since every
client here runs with ``use_microphone=False`` and ``autostart_server=False``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import websockets
from server_helpers import RATE, config, run, silence, tone, ws_base

from harken.audio.convert import float32_to_pcm16
from harken.audio.resample import StreamResampler
from harken.errors import AudioFormatError, ConfigError, ProtocolError
from harken.server.app import BackgroundServer, Server, ServerConfig
from harken.server.monitor import snapshot
from harken.server.rtstt import check_ports, parse_frame, tidy_text
from harken.testing import word_errors


def frame(audio: np.ndarray, rate: int = RATE, meta: dict[str, Any] | None = None) -> bytes:
    """One data-socket frame, built as RealtimeSTT's client builds it."""
    header = json.dumps(meta if meta is not None else {"sampleRate": rate})
    return struct.pack("<I", len(header)) + header.encode("utf-8") + bytes(
        float32_to_pcm16(audio))


def urls(server: Server) -> tuple[str, str]:
    base = ws_base(server)
    return base + "/rtstt/control", base + "/rtstt/data"


async def send_audio(ws: Any, audio: np.ndarray, rate: int = RATE, chunk_s: float = 0.1,
                     pace: float = 0.0) -> None:
    step = int(chunk_s * rate)
    for i in range(0, len(audio), step):
        await ws.send(frame(audio[i:i + step], rate))
        if pace:
            await asyncio.sleep(chunk_s * pace)


async def read_until(ws: Any, kind: str, timeout: float = 10.0, count: int = 1) -> list[Any]:
    """Data messages up to and including the ``count``-th of type ``kind``."""
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            out.append(json.loads(await ws.recv()))
            if sum(m["type"] == kind for m in out) == count:
                return out


async def control(ws: Any, command: dict[str, Any] | str) -> dict[str, Any]:
    await ws.send(command if isinstance(command, str) else json.dumps(command))
    answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return answer


# ---------------------------------------------------------------- pure parts


def test_parse_frame_reads_rate_and_pcm() -> None:
    data = frame(tone(0.01, 48000), 48000, {"sampleRate": 48000, "server_sent_to_stt": 1})
    rate, pcm = parse_frame(data, 4096)
    assert rate == 48000 and len(pcm) == 2 * 480


@pytest.mark.parametrize("data, error", [
    (b"\x05\x00", ProtocolError),
    (struct.pack("<I", 50) + b'{"sampleRate": 16000}', ProtocolError),
    (struct.pack("<I", 5) + b"{bad}" + b"\x00\x00", ProtocolError),
    (struct.pack("<I", 2) + b"[]", ProtocolError),
    (struct.pack("<I", 9000) + b" " * 9000, ProtocolError),
    (struct.pack("<I", 19) + b'{"sampleRate": 100}', AudioFormatError),
    (struct.pack("<I", 21) + b'{"sampleRate": 16000}' + b"\x00\x00\x00", AudioFormatError),
])
def test_parse_frame_rejects_malformed_frames(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_frame(data, 4096)


def test_tidy_text_like_realtimestt() -> None:
    assert tidy_text("  hello there.") == "Hello there."
    assert tidy_text("... and then") == "And then"
    assert tidy_text("so...'") == "So..."
    assert tidy_text("") == ""


def test_rtstt_ports_are_validated() -> None:
    assert check_ports((8011, 8012)) == (8011, 8012)
    assert check_ports((0, 0)) == (0, 0)
    for bad in ((8011, 8011), (8011,), [8011, 8012], (8011, 70000), (True, 8012), "8011"):
        with pytest.raises(ConfigError):
            ServerConfig(rtstt_ports=bad)  # type: ignore[arg-type]


def test_serve_flag_parses_two_ports() -> None:
    import argparse

    from harken.cli.serve import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    assert parser.parse_args(["serve", "--rtstt-ports", "8011,8012"]).rtstt_ports == (8011, 8012)
    assert parser.parse_args(["serve"]).rtstt_ports is None
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--rtstt-ports", "8011"])


# ---------------------------------------------------------------- raw protocol


def test_control_commands_answer_like_realtimestt() -> None:
    async def body(server: Server) -> None:
        control_url, _ = urls(server)
        async with websockets.connect(control_url) as c:
            assert await control(c, {"command": "set_parameter", "parameter": "language",
                                     "value": "en"}) == \
                {"status": "success", "message": "Parameter language set to en"}
            assert await control(c, {"command": "get_parameter", "parameter": "language",
                                     "request_id": 4}) == \
                {"status": "success", "parameter": "language", "value": "en", "request_id": 4}
            got = await control(c, {"command": "get_parameter",
                                    "parameter": "post_speech_silence_duration"})
            assert got["value"] == 0.5 and "request_id" not in got
            assert (await control(c, {"command": "get_parameter",
                                      "parameter": "is_recording", "request_id": 5}))["value"] \
                is False
            assert await control(c, {"command": "call_method", "method": "stop"}) == \
                {"status": "success", "message": "Method stop called"}
            for method in ("clear_audio_queue", "wakeup", "abort",
                           "perform_final_transcription", "text", "set_microphone"):
                got = await control(c, {"command": "call_method", "method": method,
                                        "args": [], "kwargs": {}})
                assert got["status"] == "success", got
            errors = [
                ({"command": "set_parameter", "parameter": "model", "value": "x"},
                 "Parameter model is not allowed (set_parameter)"),
                ({"command": "get_parameter", "parameter": "__class__", "request_id": 1},
                 "Parameter __class__ is not allowed (get_parameter)"),
                ({"command": "call_method", "method": "feed_audio"},
                 "Method feed_audio is not allowed"),
                ({"command": "call_method", "method": "__init__"},
                 "Method __init__ is not allowed"),
                ({"command": "launch"}, "Unknown command launch"),
                ("{not json", "Invalid JSON command"),
                ("[1, 2]", "Invalid JSON command"),
            ]
            for command, message in errors:
                assert await control(c, command) == {"status": "error", "message": message}
            bad_value = await control(c, {"command": "set_parameter",
                                          "parameter": "post_speech_silence_duration",
                                          "value": "soon"})
            assert bad_value["status"] == "error" and "seconds" in bad_value["message"]
            bad_code = "not-a-language-code"  # the scripted engine lists no languages
            bad_language = await control(c, {"command": "set_parameter",
                                             "parameter": "language", "value": bad_code})
            assert bad_language["status"] == "error" and repr(bad_code) in \
                bad_language["message"], bad_language
            unsupported = await control(c, {"command": "set_parameter",
                                            "parameter": "silero_sensitivity", "value": 0.9})
            assert unsupported["status"] == "error" and "not supported" in \
                unsupported["message"]
            await c.send(b"\x00\x01")
            assert json.loads(await c.recv())["status"] == "error"
            for value in (0.3, 0.16):
                assert (await control(c, {"command": "set_parameter", "parameter":
                                          "deactivity_silence_confirmation_duration",
                                          "value": value}))["status"] == "success"
                assert (await control(c, {"command": "get_parameter", "parameter":
                                          "deactivity_silence_confirmation_duration"}
                                      ))["value"] == value
            # Still serving after all that.
            assert (await control(c, {"command": "get_parameter",
                                      "parameter": "use_wake_words"}))["value"] is False

    run(body)


def test_data_messages_for_one_utterance_at_44100_hz() -> None:
    rate = 44100
    audio = np.concatenate([silence(0.3, rate), tone(1.2, rate), silence(1.0, rate)])

    async def body(server: Server) -> None:
        _, data_url = urls(server)
        async with websockets.connect(data_url) as d:
            sender = asyncio.ensure_future(send_audio(d, audio, rate, pace=0.5))
            msgs = await read_until(d, "vad_detect_start", count=2)
            await sender
            # The operator view lists the socket with its last final and measured E2F.
            rows = snapshot(server, time.monotonic())["connections"]
        kinds = [m["type"] for m in msgs]
        assert [(r["protocol"], r["last_final"]) for r in rows] == \
            [("rtstt", next(m["text"] for m in msgs if m["type"] == "fullSentence"))]
        assert 0 < rows[0]["e2f_s"] < 5, rows
        realtime = [m for m in msgs if m["type"] == "realtime"]
        assert realtime and all(set(m) == {"type", "text"} for m in realtime)
        assert all(m["text"].startswith("Speech ") for m in realtime), realtime
        no_realtime = [k for k in kinds if k != "realtime"]
        assert no_realtime == ["vad_detect_start", "vad_detect_stop", "recording_start",
                               "start_turn_detection", "recording_stop", "transcription_start",
                               "stop_turn_detection", "fullSentence", "vad_detect_start"], kinds
        assert kinds.index("recording_start") < kinds.index("realtime") < \
            kinds.index("recording_stop")
        start = next(m for m in msgs if m["type"] == "transcription_start")
        pcm = np.frombuffer(base64.b64decode(start["audio_bytes_base64"]), dtype="<i2")
        # The utterance's audio, resampled to 16 kHz: the tone plus the VAD's margins.
        assert 1.1 <= len(pcm) / RATE <= 2.2, len(pcm) / RATE
        assert np.abs(pcm).max() > 0.25 * 32767
        final = next(m for m in msgs if m["type"] == "fullSentence")
        assert set(final) == {"type", "text"}
        # The scripted engine describes what it heard: ~1.2 s of tone (+ margins) at rms 0.21.
        words = final["text"].split()
        assert words[0] == "Speech" and 1.1 <= float(words[1]) <= 2.2, final
        assert server.stats.finals_sent == 1

    run(body)


def test_post_speech_silence_duration_from_control_applies_to_the_stream() -> None:
    audio = np.concatenate([silence(0.3), tone(0.8), silence(0.9), tone(0.8), silence(2.0)])

    async def count_finals(server: Server, pause_s: float | None) -> int:
        control_url, data_url = urls(server)
        async with websockets.connect(control_url) as c, websockets.connect(data_url) as d:
            if pause_s is not None:
                assert (await control(c, {"command": "set_parameter",
                                          "parameter": "post_speech_silence_duration",
                                          "value": pause_s}))["status"] == "success"
            await send_audio(d, audio, chunk_s=0.2)
            await c.send(json.dumps({"command": "call_method", "method": "stop"}))
            msgs: list[Any] = []
            with pytest.raises(asyncio.TimeoutError):  # wait until nothing more comes
                async with asyncio.timeout(1.5):
                    while True:
                        msgs.append(json.loads(await d.recv()))
        return sum(m["type"] == "fullSentence" for m in msgs)

    async def body(server: Server) -> None:
        assert await count_finals(server, None) == 2      # 0.9 s pause > default 0.5 s
        assert await count_finals(server, 1.5) == 1       # one utterance with the pause in it

    run(body)


def test_stop_transcribes_now_and_abort_drops_the_utterance() -> None:
    async def body(server: Server) -> None:
        control_url, data_url = urls(server)
        async with websockets.connect(control_url) as c, websockets.connect(data_url) as d:
            await send_audio(d, np.concatenate([silence(0.3), tone(1.0)]))
            await read_until(d, "recording_start")
            assert (await control(c, {"command": "get_parameter",
                                      "parameter": "is_recording"}))["value"] is True
            await control(c, {"command": "call_method", "method": "stop"})
            msgs = await read_until(d, "fullSentence")
            assert "recording_stop" in [m["type"] for m in msgs]

            await send_audio(d, np.concatenate([silence(0.5), tone(1.0)]))
            await read_until(d, "recording_start")
            assert await control(c, {"command": "call_method", "method": "abort"}) == \
                {"status": "success", "message": "Method abort called"}
            msgs = await read_until(d, "vad_detect_start")
            assert [m["type"] for m in msgs if m["type"] != "realtime"] == \
                ["recording_stop", "vad_detect_start"]  # no pause: the tone runs on
            with pytest.raises(asyncio.TimeoutError):  # the aborted utterance gets no final
                await asyncio.wait_for(d.recv(), 1.0)
            # The stream goes on.
            await send_audio(d, np.concatenate([tone(1.0), silence(1.0)]))
            msgs = await read_until(d, "fullSentence")

    run(body)


def test_wake_words_per_session_with_their_messages_and_wakeup() -> None:
    # The phrase wake word never matches the scripted engine's text, so speech is only
    # transcribed after call_method wakeup (or with use_wake_words turned off).
    from harken.config import WakeConfig

    speech = np.concatenate([tone(1.0), silence(1.0)])

    async def quiet_for(d: Any, seconds: float) -> list[str]:
        kinds: list[str] = []
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    kinds.append(json.loads(await d.recv())["type"])
        return kinds

    async def body(server: Server) -> None:
        control_url, data_url = urls(server)
        async with websockets.connect(control_url) as c, websockets.connect(data_url) as d:
            assert (await control(c, {"command": "get_parameter",
                                      "parameter": "use_wake_words"}))["value"] is True
            await send_audio(d, np.concatenate([silence(0.3), speech]))
            # RealtimeSTT's state changes: listening, then waiting for the wake word.
            kinds = await quiet_for(d, 1.5)
            assert kinds == ["vad_detect_start", "vad_detect_stop",
                             "wakeword_detection_start"], kinds
            assert await control(c, {"command": "call_method", "method": "wakeup"}) == \
                {"status": "success", "message": "Method wakeup called"}
            await send_audio(d, speech)
            msgs = await read_until(d, "fullSentence")
            kinds = [m["type"] for m in msgs if m["type"] != "realtime"]
            assert kinds[:4] == ["wakeword_detection_end", "vad_detect_start",
                                 "vad_detect_stop", "recording_start"], kinds
            # After the command the session waits for the wake word again.
            assert kinds[-1] == "fullSentence" and "vad_detect_start" not in kinds[2:], kinds
            assert kinds.index("recording_stop") < kinds.index("wakeword_detection_start")
            assert await quiet_for(d, 1.0) == []
            assert (await control(c, {"command": "set_parameter", "parameter":
                                      "use_wake_words", "value": False}))["status"] == \
                "success"
            await send_audio(d, speech)  # the next stream has no wake word
            msgs = await read_until(d, "fullSentence")
            assert "wakeword_detection_start" not in [m["type"] for m in msgs]

    run(body, rtstt_wake=WakeConfig(words=("hey harken",), backend="phrase"))


def test_use_wake_words_needs_a_server_with_wake_words() -> None:
    async def body(server: Server) -> None:
        control_url, _ = urls(server)
        async with websockets.connect(control_url) as c:
            got = await control(c, {"command": "set_parameter", "parameter":
                                    "use_wake_words", "value": True})
            assert got["status"] == "error" and "--wake_words" in got["message"], got

    run(body)


MALFORMED = {
    "short header": b"\x05\x00",
    "bad JSON header": struct.pack("<I", 5) + b"{bad}" + b"\x00\x00",
    "header longer than the frame": struct.pack("<I", 400) + b'{"sampleRate": 16000}',
    "no sampleRate": struct.pack("<I", 2) + b"{}" + b"\x00\x00",
    "odd byte count": struct.pack("<I", 21) + b'{"sampleRate": 16000}' + b"\x00\x01\x02",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_frame_closes_only_that_data_socket(name: str) -> None:
    async def body(server: Server) -> None:
        control_url, data_url = urls(server)
        async with websockets.connect(control_url) as c, \
                websockets.connect(data_url) as good, websockets.connect(data_url) as bad:
            await send_audio(good, silence(0.5))
            await send_audio(bad, silence(0.5))
            await bad.send(MALFORMED[name])
            msgs = []
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    msgs.append(json.loads(await asyncio.wait_for(bad.recv(), 5)))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            error = msgs[-1]
            assert error["type"] == "error" and error["message"], msgs
            assert error["code"] == ("bad_audio" if name == "odd byte count"
                                     else "bad_message")
            # The other data socket and the control socket carry on.
            await send_audio(good, np.concatenate([tone(1.0), silence(1.0)]))
            await read_until(good, "fullSentence")
            assert (await control(c, {"command": "get_parameter",
                                      "parameter": "is_recording"}))["status"] == "success"
        assert server.stats.closed_by_error[error["code"]] == 1

    run(body)


def test_disconnect_mid_utterance_leaves_nothing_behind() -> None:
    async def body(server: Server) -> None:
        hub = server.rtstt
        assert hub is not None
        await asyncio.sleep(0.1)
        before = server.health()
        control_url, data_url = urls(server)
        for _ in range(3):
            c = await websockets.connect(control_url)
            d = await websockets.connect(data_url)
            await send_audio(d, np.concatenate([silence(0.3), tone(2.0)]), pace=0.3)
            await read_until(d, "realtime")
            await control(c, {"command": "call_method", "method": "stop"})  # final in flight
            d.transport.abort()  # no close handshake, mid-utterance
            await c.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            health = server.health()
            if hub.connections == 0 and health["sessions"] == 0 and health["tasks"] <= \
                    before["tasks"] and health["in_engine"] == 0 and not hub._clients:
                break
            await asyncio.sleep(0.05)
        health = server.health()
        assert hub.connections == 0 and not hub._clients
        assert (health["sessions"], health["queue_depth"], health["in_engine"]) == (0, 0, 0)
        assert health["tasks"] <= before["tasks"], (before, health)
        assert health["status"] == "ok"

    run(body)


def test_server_shutdown_finishes_the_open_utterance() -> None:
    got: list[Any] = []

    async def main() -> None:
        server = Server(config())
        await server.start()
        try:
            _, data_url = urls(server)
            async with websockets.connect(data_url) as d:
                await send_audio(d, np.concatenate([silence(0.3), tone(1.0)]))
                await read_until(d, "recording_start")
                closing = asyncio.ensure_future(server.close())
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        got.append(json.loads(await asyncio.wait_for(d.recv(), 10)))
                await closing
        finally:
            await server.close()

    asyncio.run(main())
    kinds = [m["type"] for m in got]
    assert "fullSentence" in kinds and kinds[-1] == "error", kinds
    assert got[-1]["code"] == "shutdown"


def test_shutdown_method_ends_only_this_clients_session() -> None:
    async def body(server: Server) -> None:
        control_url, data_url = urls(server)
        async with websockets.connect(control_url) as c, websockets.connect(data_url) as d:
            assert (await control(c, {"command": "get_parameter", "parameter": "language"}
                                  ))["value"] == (server.config.engine.language or "")
            await send_audio(d, np.concatenate([silence(0.3), tone(1.0)]))
            await read_until(d, "recording_start")
            assert await control(c, {"command": "call_method", "method": "shutdown"}) == \
                {"status": "success", "message": "Method shutdown called"}
            got = []
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    got.append(json.loads(await asyncio.wait_for(d.recv(), 10)))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            assert "fullSentence" in [m["type"] for m in got], got
            # The server goes on serving: a new data socket gets a new session.
            async with websockets.connect(data_url) as again:
                await send_audio(again, silence(0.2))
                assert json.loads(await again.recv()) == {"type": "vad_detect_start"}

    run(body)


# ---------------------------------------------------------------- RealtimeSTT's client


@pytest.fixture(scope="module")
def client_class() -> Iterator[Any]:
    """RealtimeSTT's ``AudioToTextRecorderClient`` (its real module)."""
    pytest.importorskip("websocket", reason="websocket-client (RealtimeSTT's client) missing")
    pytest.importorskip("RealtimeSTT", reason="RealtimeSTT is not installed (scripts/test)")
    stub = None
    try:
        import RealtimeSTT.audio_input  # noqa: F401
    except ImportError:  # PyAudio/SciPy/colorama: microphone only, unused here
        stub = types.ModuleType("RealtimeSTT.audio_input")

        class NoMicrophone:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                raise RuntimeError("the tests run RealtimeSTT's client without a microphone")

        stub.AudioInput = NoMicrophone  # type: ignore[attr-defined]
        sys.modules["RealtimeSTT.audio_input"] = stub
    try:
        from RealtimeSTT.audio_recorder_client import AudioToTextRecorderClient
        yield AudioToTextRecorderClient
    finally:
        if stub is not None and sys.modules.get("RealtimeSTT.audio_input") is stub:
            del sys.modules["RealtimeSTT.audio_input"]


class Recorded:
    """What RealtimeSTT's client reported through its callbacks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[str] = []
        self.realtime: list[str] = []
        self.transcription_audio: list[np.ndarray] = []

    def add(self, name: str) -> Callable[..., None]:
        def callback(*args: Any) -> None:
            with self.lock:
                self.events.append(name)
                if name == "realtime":
                    self.realtime.append(args[0])
                if name == "transcription_start":
                    self.transcription_audio.append(args[0])
        return callback


def open_client(client_class: Any, srv: BackgroundServer, recorded: Recorded,
                **kw: Any) -> Any:
    """RealtimeSTT's client on the extra ports if the server has them, else on the paths."""
    hub = srv.server.rtstt
    assert hub is not None
    if hub.ports is not None:
        control_url, data_url = (f"ws://127.0.0.1:{port}" for port in hub.ports)
    else:
        control_url, data_url = urls(srv.server)
    client = client_class(
        control_url=control_url, data_url=data_url,
        use_microphone=False, autostart_server=False, spinner=False,
        on_recording_start=recorded.add("recording_start"),
        on_recording_stop=recorded.add("recording_stop"),
        on_vad_detect_start=recorded.add("vad_detect_start"),
        on_vad_detect_stop=recorded.add("vad_detect_stop"),
        on_transcription_start=recorded.add("transcription_start"),
        on_realtime_transcription_update=recorded.add("realtime"), **kw)
    deadline = time.monotonic() + 10
    while not (client.data_ws.sock and client.data_ws.sock.connected):
        assert time.monotonic() < deadline, "the data socket did not open"
        time.sleep(0.02)
    return client


def feed(client: Any, audio: np.ndarray, rate: int, pace: float) -> None:
    """Feed 16 kHz audio through the client at ``rate`` Hz, ``pace`` x real time."""
    resampler = StreamResampler(RATE, rate)
    step = RATE // 10
    for i in range(0, len(audio), step):
        chunk = resampler.process(audio[i:i + step])
        client.feed_audio(bytes(float32_to_pcm16(chunk)), None, original_sample_rate=rate)
        time.sleep(0.1 * pace)


def test_realtimestt_client_against_default_style_urls(client_class: Any) -> None:
    recorded = Recorded()
    audio = np.concatenate([silence(0.3), tone(1.5), silence(1.0)])
    with BackgroundServer(config(rtstt_ports=(0, 0))) as srv:
        client = open_client(client_class, srv, recorded, language="en")
        try:
            assert client.get_parameter("language") == "en"  # set by the client at start
            assert client.get_parameter("is_recording") is False
            feed(client, audio, 48000, pace=0.5)
            assert client.final_text_ready.wait(10), recorded.events
            words = client.final_text.split()  # "Speech 2.08 s rms 0.180": tone + margins
            assert words[0] == "Speech" and 1.4 <= float(words[1]) <= 2.6, client.final_text
            time.sleep(0.2)
        finally:
            client.shutdown()
    with recorded.lock:
        events = [e for e in recorded.events if e != "realtime"]
        assert events[:5] == ["vad_detect_start", "vad_detect_stop", "recording_start",
                              "recording_stop", "transcription_start"], recorded.events
        assert recorded.realtime and all(t.startswith("Speech ") for t in recorded.realtime)
        seconds = len(recorded.transcription_audio[0]) / RATE
        assert 1.4 <= seconds <= 2.5, seconds


@pytest.mark.model
def test_realtimestt_client_with_the_real_model(client_class: Any, espeak: Any) -> None:
    sentence = "Please send the report to the whole team before Friday."
    speech = espeak(sentence)
    audio = np.concatenate([silence(0.5), speech, silence(1.5)])
    recorded = Recorded()
    with BackgroundServer(ServerConfig(port=0)) as srv:
        client = open_client(client_class, srv, recorded, language="en")
        try:
            feed(client, audio, 44100, pace=0.5)
            assert client.final_text_ready.wait(30), recorded.events
            text = client.final_text
        finally:
            client.shutdown()
    errors, n = word_errors(sentence, text)
    assert errors / n <= 0.2, (sentence, text)
    assert text[:1].isupper()
    with recorded.lock:
        assert recorded.realtime, recorded.events
        assert "recording_start" in recorded.events and "recording_stop" in recorded.events


@pytest.mark.model
def test_realtimestt_client_with_a_porcupine_wake_word(client_class: Any, espeak: Any) -> None:
    # stt-server's --wake_words jarvis --wakeword_backend pvporcupine, served by harken with
    # the real tiny.en model: speech before the wake word is not transcribed, the command
    # after it is, and the client hears the wake word and turn detection messages.
    pytest.importorskip("pvporcupine")
    from harken.config import WakeConfig

    sentence = "Please send the report to the whole team before Friday."
    audio = np.concatenate([
        silence(0.5), espeak("Good morning everybody."), silence(1.0),
        espeak("jarvis", "en-us+f3", 150), silence(0.4), espeak(sentence), silence(1.5)])
    recorded = Recorded()
    wake = WakeConfig(words=("jarvis",), backend="porcupine")
    with BackgroundServer(ServerConfig(port=0, rtstt_wake=wake)) as srv:
        client = open_client(
            client_class, srv, recorded, language="en",
            on_wakeword_detected=recorded.add("wakeword_detected"),
            on_wakeword_detection_start=recorded.add("wakeword_detection_start"),
            on_wakeword_detection_end=recorded.add("wakeword_detection_end"),
            on_turn_detection_start=recorded.add("turn_start"),
            on_turn_detection_stop=recorded.add("turn_stop"))
        try:
            assert client.get_parameter("use_wake_words") is True
            feed(client, audio, 16000, pace=0.5)
            assert client.final_text_ready.wait(30), recorded.events
            text = client.final_text
        finally:
            client.shutdown()
    errors, n = word_errors(sentence, text)
    assert errors / n <= 0.25, (sentence, text)
    with recorded.lock:
        events = [e for e in recorded.events if e != "realtime"]
    assert events.count("recording_start") == 1, events  # the command only
    wake_at = events.index("wakeword_detected")
    assert events.index("wakeword_detection_start") < wake_at < \
        events.index("wakeword_detection_end") < events.index("recording_start"), events
    turns = [e for e in events if e.startswith("turn_")]
    assert turns and turns == ["turn_start", "turn_stop"] * (len(turns) // 2), events


def test_token_is_needed_on_the_paths_and_the_extra_ports() -> None:
    async def body(server: Server) -> None:
        hub = server.rtstt
        assert hub is not None and hub.ports is not None
        control_url, _ = urls(server)
        for url in (control_url, f"ws://127.0.0.1:{hub.ports[0]}",
                    f"ws://127.0.0.1:{hub.ports[1]}"):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(url):
                    pass
            assert refused.value.response.status_code == 401
            async with websockets.connect(url + "?token=s3cret") as ws:
                if url.endswith(str(hub.ports[1])):
                    await send_audio(ws, silence(0.2))
                    assert json.loads(await ws.recv()) == {"type": "vad_detect_start"}
                else:
                    assert (await control(ws, {"command": "get_parameter",
                                               "parameter": "is_recording"}))["value"] is False

    run(body, token="s3cret", rtstt_ports=(0, 0))
