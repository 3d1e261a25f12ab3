"""Fuzzing the server's control-message parser: bad input is a ProtocolError, nothing else."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from harken.errors import ProtocolError
from harken.server.protocol import encode, parse_client

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)
FIELDS = ["type", "sample_rate", "encoding", "channels", "language", "partials"]


def parse_or_protocol_error(data: str | bytes) -> None:
    try:
        msg = parse_client(data)
    except ProtocolError:
        return
    # Whatever parses must encode again and parse to the same message.
    assert parse_client(encode(msg)) == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data):
    parse_or_protocol_error(data)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_random_text(data):
    parse_or_protocol_error(data)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["start", "stop", "ping", "bogus", 7, None]),
       st.dictionaries(st.sampled_from(FIELDS[1:]) | st.text(max_size=8), JSON_VALUES,
                       max_size=5))
def test_json_objects_with_plausible_fields(kind, fields):
    parse_or_protocol_error(json.dumps({"type": kind, **fields}))


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_any_json_value(value):
    parse_or_protocol_error(json.dumps(value))


def test_deep_nesting_and_oversize_are_protocol_errors():
    for data in ("[" * 100_000, '{"type": "start", "x": "' + "a" * 100_000 + '"}'):
        try:
            parse_client(data)
        except ProtocolError:
            continue
        raise AssertionError("accepted")
