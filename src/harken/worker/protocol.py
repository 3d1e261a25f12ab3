"""The framed message protocol between harken and its engine process.

Pure code: it reads and writes byte streams and touches no thread, process or file of its
own. Both sides use it: the parent's writer and reader threads
(:mod:`harken.worker.process`) and the child program (:mod:`harken.worker.child`).

A frame is an 11-byte preamble, a UTF-8 JSON header and a binary payload::

    b"HK" | version (1 byte) | header length (4 bytes) | payload length (4 bytes)
    (lengths are unsigned big-endian, in bytes)
    header: a JSON object with a "type" key
    payload: raw bytes (float32 little-endian audio for "transcribe")

Messages, parent to child:

- ``init`` ``{engine: EngineConfig.to_dict(), log_level: int}``
- ``transcribe`` ``{id: int, kind: "final" | "partial", hints: DecodeHints.to_dict()}`` +
  audio payload
- ``cancel`` ``{id: int}``: forget a transcribe request; if it is still queued in the child
  it is answered "failed" with error_type "Cancelled", if it is being transcribed it stops
  after its encoder where the engine can (answered "Cancelled") or its result is sent as
  usual (the parent drops it), and an unknown id is ignored
- ``ping`` ``{id: int}``
- ``shutdown`` ``{}``

Child to parent:

- ``ready`` ``{info: {engine, model, device, compute_type, load_seconds}}``
- ``result`` ``{id: int, output: EngineOutput.to_dict(), compute_seconds: float}``
- ``failed`` ``{id: int | None, error_type: str, message: str, traceback: str}``
  (``id`` None: the engine failed to load; ``error_type`` "Superseded": a queued partial
  was replaced by a newer one and will get no result; "Cancelled": a queued request was
  cancelled, or stopped after its encoder when cancelled while being transcribed;
  "PartialInterrupted": a partial stopped after its encoder for a waiting final)
- ``pong`` ``{id: int}``
- ``log`` ``{name: str, levelno: int, message: str}``
- ``shutdown_ack`` ``{}``

Speech synthesis (the sibling program :mod:`harken.speak.child`, same frames; its "init"
carries a voice spec as ``engine``, and "ready" info has ``sample_rate``):

- ``synthesize`` ``{id: int, text: str, options: {speed: float}}``, parent to child
- ``audio`` ``{id: int}`` + float32 payload at the engine's rate, child to parent
- ``done`` ``{id: int, samples: int}``: the sentence is complete, child to parent
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ProtocolError

__all__ = [
    "MAGIC",
    "MAX_HEADER_BYTES",
    "MAX_PAYLOAD_BYTES",
    "MESSAGE_FIELDS",
    "VERSION",
    "Message",
    "check_message",
    "decode_audio",
    "encode_audio",
    "read_message",
    "write_message",
]

MAGIC = b"HK"
"""The first two bytes of every frame."""
VERSION = 2
"""The protocol version byte; a frame with another version is rejected (2: "transcribe"
carries typed decode hints instead of version 1's free engine options)."""
MAX_HEADER_BYTES = 1 << 20
"""The largest JSON header accepted, in bytes (1 MiB)."""
MAX_PAYLOAD_BYTES = 64 << 20
"""The largest payload accepted, in bytes (64 MiB: about 17 minutes of float32 16 kHz audio)."""

_PREAMBLE = struct.Struct(">2sBII")

MESSAGE_FIELDS: dict[str, frozenset[str]] = {
    "init": frozenset({"engine", "log_level"}),
    "transcribe": frozenset({"id", "kind", "hints"}),
    "cancel": frozenset({"id"}),
    "ping": frozenset({"id"}),
    "shutdown": frozenset(),
    "ready": frozenset({"info"}),
    "result": frozenset({"id", "output", "compute_seconds"}),
    "failed": frozenset({"id", "error_type", "message", "traceback"}),
    "pong": frozenset({"id"}),
    "log": frozenset({"name", "levelno", "message"}),
    "shutdown_ack": frozenset(),
    "synthesize": frozenset({"id", "text", "options"}),
    "audio": frozenset({"id"}),
    "done": frozenset({"id", "samples"}),
}
"""The header keys each known message type must carry (besides "type")."""


@dataclass(frozen=True)
class Message:
    """One decoded frame."""

    type: str
    """The message type, e.g. "transcribe"."""
    header: dict[str, Any] = field(default_factory=dict)
    """The JSON header without its "type" key."""
    payload: bytes = b""
    """The binary payload (empty for most types)."""


def write_message(stream: IO[bytes], type: str, header: dict[str, Any] | None = None,
                  payload: bytes = b"") -> None:
    """Encode one frame and write it to ``stream`` with a single write, then flush.

    Args:
        stream: a binary stream (a pipe, a socket file, ``io.BytesIO``).
        type: the message type.
        header: JSON-serialisable fields; must not contain "type".
        payload: raw bytes sent after the header.

    Raises:
        ProtocolError: the header is not JSON-serialisable, contains "type", or the header or
            payload exceeds its size limit.
    """
    fields = dict(header or {})
    if "type" in fields:
        raise ProtocolError("the message header must not contain a 'type' key; pass it as type")
    fields["type"] = type
    try:
        raw = json.dumps(fields, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"the {type!r} message header is not JSON-serialisable: {exc}") from exc
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(f"the {type!r} header is {len(raw)} bytes; "
                            f"at most {MAX_HEADER_BYTES} are allowed")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"the {type!r} payload is {len(payload)} bytes; "
                            f"at most {MAX_PAYLOAD_BYTES} are allowed")
    stream.write(_PREAMBLE.pack(MAGIC, VERSION, len(raw), len(payload)) + raw + bytes(payload))
    stream.flush()


def _read_exact(stream: IO[bytes], size: int, what: str) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            raise ProtocolError(f"truncated frame: the stream ended {remaining} bytes into "
                                f"the {what} ({size} bytes expected)")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(stream: IO[bytes]) -> Message | None:
    """Read one frame from ``stream``, blocking until it is complete.

    Args:
        stream: a binary stream.

    Returns:
        The message, or None if the stream ended cleanly before a frame started.

    Raises:
        ProtocolError: bad magic, unsupported version, truncated frame, oversize header or
            payload, or a header that is not a JSON object with a string "type".
    """
    first = stream.read(1)
    if not first:
        return None
    preamble = first + _read_exact(stream, _PREAMBLE.size - 1, "preamble")
    magic, version, header_len, payload_len = _PREAMBLE.unpack(preamble)
    if magic != MAGIC:
        raise ProtocolError(f"bad magic {magic!r}: expected {MAGIC!r} (is something else "
                            "writing to the pipe?)")
    if version != VERSION:
        raise ProtocolError(f"unsupported protocol version {version}; this side speaks {VERSION}")
    if header_len > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {header_len} bytes exceeds the limit of "
                            f"{MAX_HEADER_BYTES}")
    if payload_len > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"payload of {payload_len} bytes exceeds the limit of "
                            f"{MAX_PAYLOAD_BYTES}")
    raw = _read_exact(stream, header_len, "header")
    payload = _read_exact(stream, payload_len, "payload") if payload_len else b""
    try:
        fields = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"the header is not valid UTF-8 JSON: {exc}") from exc
    except RecursionError as exc:  # e.g. 100 000 nested "[": fits the size limit
        raise ProtocolError("the header is JSON nested too deeply to decode") from exc
    if not isinstance(fields, dict):
        raise ProtocolError(f"the header must be a JSON object, got {type(fields).__name__}")
    msg_type = fields.pop("type", None)
    if not isinstance(msg_type, str) or not msg_type:
        raise ProtocolError("the header has no string 'type' key")
    return Message(msg_type, fields, payload)


def check_message(message: Message, *expected: str) -> None:
    """Check that a message is of a known (or one of the ``expected``) types with its fields.

    Args:
        message: a decoded message.
        *expected: the types acceptable here; any known type when empty.

    Raises:
        ProtocolError: unknown or unexpected type, or a required field is missing.
    """
    if expected and message.type not in expected:
        raise ProtocolError(f"expected a {' or '.join(expected)} message, got {message.type!r}")
    required = MESSAGE_FIELDS.get(message.type)
    if required is None:
        raise ProtocolError(f"unknown message type {message.type!r}; known types: "
                            f"{', '.join(sorted(MESSAGE_FIELDS))}")
    missing = sorted(required - set(message.header))
    if missing:
        raise ProtocolError(f"the {message.type!r} message lacks {', '.join(missing)}")


def encode_audio(audio: NDArray[np.float32]) -> bytes:
    """Encode mono audio samples as float32 little-endian bytes (4 bytes per sample)."""
    return np.ascontiguousarray(audio, dtype="<f4").reshape(-1).tobytes()


def decode_audio(payload: bytes) -> NDArray[np.float32]:
    """Decode float32 little-endian bytes into a writable native float32 array.

    Raises:
        ProtocolError: the length is not a multiple of 4 bytes.
    """
    if len(payload) % 4:
        raise ProtocolError(f"audio payload of {len(payload)} bytes is not a whole number of "
                            "float32 samples (4 bytes each)")
    return np.frombuffer(payload, dtype="<f4").astype(np.float32)
