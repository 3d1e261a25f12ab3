"""The worker wire protocol: round trips of every message type and every malformed input."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from harken.config import EngineConfig
from harken.engine.base import DecodeHints, EngineOutput, WordTiming
from harken.errors import ProtocolError
from harken.worker.protocol import (
    MAX_HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    MESSAGE_FIELDS,
    VERSION,
    Message,
    check_message,
    decode_audio,
    encode_audio,
    read_message,
    write_message,
)

AUDIO = (np.sin(np.linspace(0, 100, 1600)) * 0.5).astype(np.float32)
OUTPUT = EngineOutput("hello world", "en", 0.97,
                      (WordTiming(0.0, 0.4, "hello", 0.9), WordTiming(0.5, 0.9, "world", 0.8)))

EXAMPLES: dict[str, tuple[dict[str, object], bytes]] = {
    "init": ({"engine": EngineConfig(engine="scripted", options={"text": "hi"}).to_dict(),
              "log_level": 20}, b""),
    "transcribe": ({"id": 7, "kind": "final",
                    "hints": DecodeHints(quality="cheap", beam_size=1, prefix="Hi",
                                         extra={"text": "x"}).to_dict()},
                   encode_audio(AUDIO)),
    "cancel": ({"id": 7}, b""),
    "ping": ({"id": 3}, b""),
    "shutdown": ({}, b""),
    "ready": ({"info": {"engine": "scripted", "model": "m", "device": "cpu",
                        "compute_type": "int8", "load_seconds": 0.5}}, b""),
    "result": ({"id": 7, "output": OUTPUT.to_dict(), "compute_seconds": 0.25}, b""),
    "failed": ({"id": None, "error_type": "FileNotFoundError", "message": "model path 'x'",
                "traceback": "Traceback ..."}, b""),
    "pong": ({"id": 3}, b""),
    "log": ({"name": "faster_whisper", "levelno": 30, "message": "héllo ☃"}, b""),
    "shutdown_ack": ({}, b""),
    "synthesize": ({"id": 4, "text": "Hello there.", "options": {"speed": 1.0}}, b""),
    "audio": ({"id": 4}, encode_audio(AUDIO)),
    "done": ({"id": 4, "samples": 1600}, b""),
}


def frame(magic: bytes = b"HK", version: int = VERSION, header: bytes = b'{"type":"ping","id":1}',
          payload: bytes = b"", header_len: int | None = None,
          payload_len: int | None = None) -> bytes:
    hl = len(header) if header_len is None else header_len
    pl = len(payload) if payload_len is None else payload_len
    return struct.pack(">2sBII", magic, version, hl, pl) + header + payload


def test_examples_cover_every_message_type() -> None:
    assert set(EXAMPLES) == set(MESSAGE_FIELDS)


@pytest.mark.parametrize("msg_type", sorted(MESSAGE_FIELDS))
def test_round_trip(msg_type: str) -> None:
    header, payload = EXAMPLES[msg_type]
    stream = io.BytesIO()
    write_message(stream, msg_type, header, payload)
    write_message(stream, msg_type, header, payload)  # two frames back to back
    stream.seek(0)
    for _ in range(2):
        message = read_message(stream)
        assert message == Message(msg_type, header, payload)
        check_message(message)
    assert read_message(stream) is None


def test_round_trip_of_domain_objects() -> None:
    stream = io.BytesIO()
    header, payload = EXAMPLES["transcribe"]
    write_message(stream, "transcribe", header, payload)
    write_message(stream, "result", *EXAMPLES["result"])
    stream.seek(0)
    request = read_message(stream)
    assert request is not None
    np.testing.assert_array_equal(decode_audio(request.payload), AUDIO)
    assert DecodeHints.from_dict(request.header["hints"]) == DecodeHints(
        quality="cheap", beam_size=1, prefix="Hi", extra={"text": "x"})
    result = read_message(stream)
    assert result is not None
    assert EngineOutput.from_dict(result.header["output"]) == OUTPUT
    init = EngineConfig.from_dict(EXAMPLES["init"][0]["engine"])  # type: ignore[arg-type]
    assert init == EngineConfig(engine="scripted", options={"text": "hi"})


def test_write_is_a_single_write_and_flush() -> None:
    class Recorder(io.BytesIO):
        writes = 0
        flushes = 0

        def write(self, data: object) -> int:  # type: ignore[override]
            self.writes += 1
            return super().write(data)  # type: ignore[arg-type]

        def flush(self) -> None:
            self.flushes += 1

    stream = Recorder()
    write_message(stream, "transcribe", *EXAMPLES["transcribe"])
    assert (stream.writes, stream.flushes) == (1, 1)


class Trickle(io.RawIOBase):
    """Returns at most 3 bytes per read, like a slow pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 3) if size >= 0 else 3)


def test_short_reads_are_reassembled() -> None:
    stream = io.BytesIO()
    write_message(stream, "transcribe", *EXAMPLES["transcribe"])
    message = read_message(Trickle(stream.getvalue()))  # type: ignore[arg-type]
    assert message is not None and message.payload == EXAMPLES["transcribe"][1]


def test_clean_eof_is_none() -> None:
    assert read_message(io.BytesIO(b"")) is None


@pytest.mark.parametrize("data, match", [
    (frame(magic=b"XX"), "bad magic"),
    (frame(version=1), "unsupported protocol version 1; this side speaks 2"),
    (frame()[:5], "truncated frame.*preamble"),
    (frame()[:15], "truncated frame.*header"),
    (frame(payload=b"abcd")[:-1], "truncated frame.*payload"),
    (frame(header=b"{not json"), "not valid UTF-8 JSON"),
    (frame(header=b"\xff\xfe{}"), "not valid UTF-8 JSON"),
    (frame(header=b"[1, 2]"), "must be a JSON object"),
    (frame(header=b'{"id": 1}'), "no string 'type'"),
    (frame(header=b'{"type": 5}'), "no string 'type'"),
    (frame(header=b"", header_len=MAX_HEADER_BYTES + 1), "exceeds the limit"),
    (frame(payload=b"", payload_len=MAX_PAYLOAD_BYTES + 1), "exceeds the limit"),
])
def test_malformed_frames_raise(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        read_message(io.BytesIO(data))


def test_garbage_printed_into_the_pipe_is_rejected() -> None:
    with pytest.raises(ProtocolError, match="bad magic"):
        read_message(io.BytesIO(b"Hello from a library that prints\n"))


def test_write_rejects_bad_headers() -> None:
    with pytest.raises(ProtocolError, match="must not contain a 'type'"):
        write_message(io.BytesIO(), "ping", {"type": "x", "id": 1})
    with pytest.raises(ProtocolError, match="not JSON-serialisable"):
        write_message(io.BytesIO(), "ping", {"id": object()})
    with pytest.raises(ProtocolError, match="not JSON-serialisable"):
        write_message(io.BytesIO(), "result", {"compute_seconds": float("nan")})
    with pytest.raises(ProtocolError, match="header is"):
        write_message(io.BytesIO(), "log", {"message": "x" * MAX_HEADER_BYTES})


def test_write_rejects_oversize_payload() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return MAX_PAYLOAD_BYTES + 1

    stream = io.BytesIO()
    with pytest.raises(ProtocolError, match="payload is"):
        write_message(stream, "transcribe", {"id": 1}, Huge(b""))
    assert stream.getvalue() == b""


def test_check_message() -> None:
    check_message(Message("ping", {"id": 1}), "ping", "shutdown")
    with pytest.raises(ProtocolError, match="unknown message type 'hello'"):
        check_message(Message("hello", {}))
    with pytest.raises(ProtocolError, match="expected a init message, got 'ping'"):
        check_message(Message("ping", {"id": 1}), "init")
    with pytest.raises(ProtocolError, match="lacks id, kind"):
        check_message(Message("transcribe", {"hints": {}}))


def test_audio_encoding_is_float32_little_endian() -> None:
    audio = np.array([0.0, 1.0, -0.5], dtype=np.float32)
    data = encode_audio(audio)
    assert data == struct.pack("<3f", 0.0, 1.0, -0.5)
    decoded = decode_audio(data)
    assert decoded.dtype == np.float32 and decoded.flags.writeable
    np.testing.assert_array_equal(decoded, audio)
    np.testing.assert_array_equal(decode_audio(encode_audio(audio.astype(np.float64))), audio)
    assert decode_audio(b"").shape == (0,)
    with pytest.raises(ProtocolError, match="whole number of float32"):
        decode_audio(b"abcde")


def test_header_is_compact_json() -> None:
    stream = io.BytesIO()
    write_message(stream, "ping", {"id": 1})
    raw = stream.getvalue()
    (length,) = struct.unpack(">I", raw[3:7])
    assert json.loads(raw[11:11 + length]) == {"id": 1, "type": "ping"}
