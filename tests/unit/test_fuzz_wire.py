"""Fuzzing the engine-process wire: whatever bytes arrive, the reader fails in one known way.

The parent's reader thread treats ProtocolError as "the child sent garbage: kill and restart
it". Any other exception would end that thread silently and leave requests unanswered, and a
read that never returns on finite input would hang it. So for random bytes and for mutated
valid frames, read_message must return a Message, return None (clean EOF before a frame), or
raise ProtocolError, and nothing else; the same holds for check_message and decode_audio on
what it returns.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harken.config import DECODE_QUALITIES
from harken.engine.base import DecodeHints
from harken.errors import ConfigError, ProtocolError
from harken.worker.protocol import (
    MAGIC,
    MESSAGE_FIELDS,
    VERSION,
    Message,
    check_message,
    decode_audio,
    encode_audio,
    read_message,
    write_message,
)

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
_PREAMBLE = struct.Struct(">2sBII")


def _frame(msg_type: str, header: dict[str, object], payload: bytes = b"") -> bytes:
    buf = io.BytesIO()
    write_message(buf, msg_type, header, payload)
    return buf.getvalue()


VALID_FRAMES = [
    _frame("init", {"engine": {"engine": "scripted", "options": {}}, "log_level": 20}),
    _frame("transcribe", {"id": 7, "kind": "final", "hints": {}},
           encode_audio(np.linspace(-1, 1, 64, dtype=np.float32))),
    _frame("ping", {"id": 1}),
    _frame("shutdown", {}),
    _frame("ready", {"info": {"engine": "scripted", "load_seconds": 0.1}}),
    _frame("result", {"id": 7, "output": {"text": "hi", "words": []},
                      "compute_seconds": 0.01}),
    _frame("failed", {"id": None, "error_type": "RuntimeError", "message": "x",
                      "traceback": ""}),
    _frame("pong", {"id": 1}),
    _frame("log", {"name": "harken.x", "levelno": 30, "message": "careful"}),
    _frame("shutdown_ack", {}),
]


class TrickleStream(io.RawIOBase):
    """A pipe that hands out at most ``step`` bytes per read (short reads, like a real pipe)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = max(1, step)
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.reads > 10 * len(self._data) + 100:  # a reader stuck in a loop at EOF
            raise AssertionError("read_message keeps reading after the end of the stream")
        n = self._step if size < 0 else min(size, self._step)
        chunk = bytes(self._data[self._pos:self._pos + n])
        self._pos += len(chunk)
        return chunk


def _read_all(stream: io.RawIOBase | io.BytesIO, limit: int = 1000) -> list[Message]:
    """Read frames until EOF or ProtocolError; anything else propagates and fails the test."""
    messages: list[Message] = []
    for _ in range(limit):
        try:
            message = read_message(stream)  # type: ignore[arg-type]
        except ProtocolError:
            return messages
        if message is None:
            return messages
        assert isinstance(message, Message)
        assert isinstance(message.type, str) and message.type
        assert isinstance(message.header, dict) and "type" not in message.header
        assert isinstance(message.payload, bytes)
        try:
            check_message(message)
        except ProtocolError:
            pass
        if message.payload:
            try:
                decode_audio(message.payload)
            except ProtocolError:
                pass
        messages.append(message)
    raise AssertionError(f"more than {limit} frames from bounded input")


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_give_only_protocol_errors(data: bytes) -> None:
    _read_all(io.BytesIO(data))


@FUZZ
@given(st.binary(max_size=64))
def test_random_bytes_after_a_valid_preamble(body: bytes) -> None:
    # Random bytes rarely start with b"HK\x01"; give the parser a chance to go deeper.
    header_len = len(body) // 2
    data = _PREAMBLE.pack(MAGIC, VERSION, header_len, len(body) - header_len) + body
    _read_all(io.BytesIO(data))


@st.composite
def mutated_stream(draw: st.DrawFn) -> bytes:
    frames = draw(st.lists(st.sampled_from(VALID_FRAMES), min_size=1, max_size=3))
    data = bytearray(b"".join(frames))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "length"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        else:  # rewrite the header or payload length of the first frame
            field_at = draw(st.sampled_from([3, 7]))
            value = draw(st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)))
            if len(data) >= field_at + 4:
                data[field_at:field_at + 4] = value.to_bytes(4, "big")
    return bytes(data)


@FUZZ
@given(mutated_stream(), st.integers(1, 16))
def test_mutated_valid_frames_give_only_protocol_errors(data: bytes, step: int) -> None:
    _read_all(TrickleStream(data, step))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=10)


@FUZZ
@given(st.one_of(json_values, st.sampled_from(sorted(MESSAGE_FIELDS))),
       st.dictionaries(st.sampled_from(sorted({k for v in MESSAGE_FIELDS.values() for k in v})),
                       json_values, max_size=4))
def test_any_json_header_is_a_message_or_a_protocol_error(type_value: object,
                                                          fields: dict[str, object]) -> None:
    header = json.dumps({**fields, "type": type_value}).encode()
    data = _PREAMBLE.pack(MAGIC, VERSION, len(header), 0) + header
    messages = _read_all(io.BytesIO(data))
    if isinstance(type_value, str) and type_value:
        assert len(messages) == 1 and messages[0].type == type_value


_text_or_none = st.none() | st.text(max_size=12)
decode_hints = st.builds(
    DecodeHints, quality=st.none() | st.sampled_from(DECODE_QUALITIES),
    beam_size=st.none() | st.integers(1, 20), word_timestamps=st.none() | st.booleans(),
    language=_text_or_none, initial_prompt=_text_or_none, prefix=_text_or_none,
    hotwords=_text_or_none, extra=st.dictionaries(st.text(max_size=6), json_values, max_size=3))


@FUZZ
@given(decode_hints)
def test_decode_hints_cross_the_wire_unchanged(hints: DecodeHints) -> None:
    stream = io.BytesIO(_frame("transcribe", {"id": 1, "kind": "final",
                                              "hints": hints.to_dict()}))
    message = read_message(stream)
    assert message is not None
    check_message(message, "transcribe")
    assert DecodeHints.from_dict(message.header["hints"]) == hints


@FUZZ
@given(st.dictionaries(st.sampled_from([*DecodeHints.__dataclass_fields__, "beam"]),
                       json_values, max_size=4) | json_values)
def test_any_json_hints_are_hints_or_a_config_error(data: object) -> None:
    # The child answers "failed" for a ConfigError; anything else would be a crash.
    try:
        hints = DecodeHints.from_dict(data)  # type: ignore[arg-type]
    except ConfigError:
        return
    assert DecodeHints.from_dict(hints.to_dict()) == hints


def test_valid_frames_survive_the_fuzz_harness() -> None:
    # The harness itself must not swallow real frames: all ten come back, in order.
    messages = _read_all(TrickleStream(b"".join(VALID_FRAMES), 3))
    assert [m.type for m in messages] == [
        "init", "transcribe", "ping", "shutdown", "ready", "result", "failed", "pong", "log",
        "shutdown_ack"]


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_header_is_a_protocol_error(opener: bytes) -> None:
    # 100 000 nested arrays fit in the 1 MiB header limit; json.loads then raises
    # RecursionError, which must not escape as anything but ProtocolError (it would end
    # the parent's reader thread).
    header = opener * 100_000
    data = _PREAMBLE.pack(MAGIC, VERSION, len(header), 0) + header
    with pytest.raises(ProtocolError):
        read_message(io.BytesIO(data))
