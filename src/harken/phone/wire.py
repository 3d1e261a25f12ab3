"""What harken and its SIP program say to each other, and SIP URI checks (pure).

The frames are :mod:`harken.worker.protocol`'s; this module names the messages and their
fields. Audio is signed 16-bit little-endian mono at :data:`SAMPLE_RATE` (the G.711 rate).

Parent to SIP program:

- ``init`` ``{host, port, rtp_port, rtp_port_range, id_uri, registrar, user, password,
  max_calls, log_level, jitter_buffer_ms}``
- ``answer`` ``{call, code}``: 200 answers, 3xx-6xx rejects
- ``audio`` ``{call}`` + PCM: appended to the call's outgoing audio
- ``clear`` ``{call}``: drop the call's outgoing audio now (barge-in); answered "cleared"
- ``pause`` ``{call, paused}``: play silence but keep the outgoing audio (the caller may be
  barging in), or play on
- ``hangup`` ``{call}``, ``transfer`` ``{call, uri}``, ``shutdown`` ``{}``

SIP program to parent:

- ``ready`` ``{address}``; ``failed`` ``{error_type, message, traceback}`` (no endpoint)
- ``incoming`` ``{call, remote, local}``: a call rings and waits for "answer"
- ``media`` ``{call}``: audio flows both ways
- ``audio`` ``{call, played, pending}`` + 20 ms of the caller's PCM; ``played`` counts the
  agent's samples sent into the call so far, ``pending`` those still queued
- ``cleared`` ``{call, played}``, ``dtmf`` ``{call, digit}``, ``ended`` ``{call, code, reason}``
- ``transfer_status`` ``{call, code, reason, final}``: how the transferred call is going
  (the caller's NOTIFYs after a REFER, or the REFER's own failure); ``final`` marks the last
- ``registration`` ``{code, reason}``, ``error`` ``{call, message}``, ``log``, ``shutdown_ack``
"""

from __future__ import annotations

import re

from ..errors import ConfigError, ProtocolError
from ..worker.protocol import Message

__all__ = ["FRAME_BYTES", "SAMPLE_RATE", "check_phone_message", "check_sip_uri",
           "parse_listen"]

SAMPLE_RATE = 8000
"""Hz of every PCM payload (the G.711 codec rate)."""
FRAME_BYTES = 320
"""Bytes of one 20 ms frame at :data:`SAMPLE_RATE`."""

_FIELDS: dict[str, frozenset[str]] = {
    "init": frozenset({"host", "port", "rtp_port", "rtp_port_range", "id_uri", "registrar",
                       "user", "password", "max_calls", "log_level",
                       "jitter_buffer_ms"}),
    "answer": frozenset({"call", "code"}),
    "audio": frozenset({"call"}),
    "clear": frozenset({"call"}),
    "pause": frozenset({"call", "paused"}),
    "hangup": frozenset({"call"}),
    "transfer": frozenset({"call", "uri"}),
    "shutdown": frozenset(),
    "ready": frozenset({"address"}),
    "failed": frozenset({"error_type", "message", "traceback"}),
    "incoming": frozenset({"call", "remote", "local"}),
    "media": frozenset({"call"}),
    "cleared": frozenset({"call", "played"}),
    "dtmf": frozenset({"call", "digit"}),
    "transfer_status": frozenset({"call", "code", "reason", "final"}),
    "ended": frozenset({"call", "code", "reason"}),
    "registration": frozenset({"code", "reason"}),
    "error": frozenset({"call", "message"}),
    "log": frozenset({"name", "levelno", "message"}),
    "shutdown_ack": frozenset(),
}

# sip:user@host[:port][;params] or sips:..., user optional; host a name, IPv4 or [IPv6].
_URI = re.compile(r"^sips?:(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+(?::[^@\s]*)?@)?"
                  r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
                  r"(?::\d{1,5})?(?:;[^\s<>\"]*)?$")


def check_phone_message(message: Message, *expected: str) -> None:
    """Check a message's type (known, or one of ``expected``) and its fields.

    Raises:
        ProtocolError: unknown or unexpected type, or a field is missing.
    """
    if expected and message.type not in expected:
        raise ProtocolError(f"expected a {' or '.join(expected)} message, got {message.type!r}")
    required = _FIELDS.get(message.type)
    if required is None:
        raise ProtocolError(f"unknown phone message type {message.type!r}")
    missing = sorted(required - set(message.header))
    if missing:
        raise ProtocolError(f"the {message.type!r} message lacks {', '.join(missing)}")


def check_sip_uri(uri: str, what: str = "SIP URI") -> str:
    """Return ``uri`` if it looks like ``sip:user@host[:port]``.

    Raises:
        ConfigError: it does not (one sentence with an example).
    """
    if not isinstance(uri, str) or not _URI.match(uri.strip()):
        raise ConfigError(f"{what} {uri!r} is not a SIP URI; write it like "
                          "sip:alice@example.com or sip:alice@192.0.2.1:5060")
    port = re.search(r"(?:@|^sips?:)[^:;@]*:(\d+)", uri.strip())
    if port and not 0 < int(port.group(1)) < 65536:
        raise ConfigError(f"{what} {uri!r} has port {port.group(1)}, outside 1-65535")
    return uri.strip()


def parse_listen(address: str) -> tuple[str, int]:
    """Split ``"host:port"`` (port 0 picks none: SIP needs a known port, so it is refused).

    Raises:
        ConfigError: not ``host:port`` with a port in 1-65535.
    """
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen address {address!r} must be host:port with a port in "
                          "1-65535, e.g. 127.0.0.1:5070")
    return host.strip("[]"), int(port)
