"""harken's WebSocket protocol: every message round-trips; malformed ones are refused clearly."""

from __future__ import annotations

import json

import pytest

from harken.errors import ProtocolError
from harken.events import FinalTranscript, PartialTranscript, SpeechEnded, SpeechStarted, Word
from harken.server import protocol as p

CLIENT = [
    p.Start(8000, "pcm16", 1),
    p.Start(48000, "float32", 2, "en", False),
    p.Start(8000, "ulaw"),
    p.Start(8000, "alaw", 1, "de", True),
    p.Stop(),
    p.Ping(),
]
SERVER = [
    p.Ready("s1-127.0.0.1", 8000),
    p.SpeechStartedMessage(1, 0.52),
    p.SpeechEndedMessage(1, 0.52, 2.1),
    p.SpeechEndedMessage(2, 3.0, 3.1, True),
    p.Partial(1, "hello", "wor"),
    p.Partial(1, "hello", "wor", append="hello"),
    p.Final(1, "hello world", 0.52, 2.1,
            (p.WordInfo(0.6, 0.9, "hello", 0.9), p.WordInfo(1.0, 1.4, "world", 0.75)), "en",
            append=" world"),
    p.Final(2, "", 3.0, 3.1),
    p.Error("bad things", p.ErrorCode.BAD_AUDIO),
    p.Pong(),
    p.Stopped(),
]


@pytest.mark.parametrize("message", CLIENT, ids=lambda m: type(m).__name__)
def test_client_messages_round_trip(message):
    text = p.encode(message)
    assert json.loads(text)["type"] in ("start", "stop", "ping")
    assert p.parse_client(text) == message


@pytest.mark.parametrize("message", SERVER, ids=lambda m: type(m).__name__)
def test_server_messages_round_trip(message):
    assert p.parse_server(p.encode(message)) == message


def test_start_defaults_and_aliases():
    assert p.parse_client('{"type": "start", "sample_rate": 16000}') == p.Start(16000)
    start = p.parse_client('{"type":"start","sample_rate":8000,"encoding":"mulaw"}')
    assert isinstance(start, p.Start) and start.encoding == "ulaw"
    start = p.parse_client('{"type":"start","sample_rate":8000,"encoding":"A-LAW"}')
    assert isinstance(start, p.Start) and start.encoding == "alaw" and start.words
    start = p.parse_client('{"type":"start","sample_rate":8000,"words":false}')
    assert isinstance(start, p.Start) and start.words is False


@pytest.mark.parametrize("text, fragment", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"sample_rate": 8000}', '"type"'),
    ('{"type": "launch"}', "unknown control message type"),
    ('{"type": "start"}', '"sample_rate"'),
    ('{"type": "start", "sample_rate": "8000"}', "sample_rate"),
    ('{"type": "start", "sample_rate": true}', "sample_rate"),
    ('{"type": "start", "sample_rate": 100}', "from 4000"),
    ('{"type": "start", "sample_rate": 8000, "encoding": "mp3"}', "encoding"),
    ('{"type": "start", "sample_rate": 8000, "channels": 0}', "channels"),
    ('{"type": "start", "sample_rate": 8000, "partials": "yes"}', "partials"),
    ('{"type": "start", "sample_rate": 8000, "words": 0}', '"words"'),
    ('{"type": "start", "sample_rate": 8000, "colour": "red"}', "unknown field"),
    ('{"type": "stop", "now": true}', "unknown field"),
])
def test_malformed_client_messages_say_what_is_wrong(text, fragment):
    with pytest.raises(ProtocolError, match=None) as info:
        p.parse_client(text)
    assert fragment in str(info.value)


def test_oversize_control_message_is_refused():
    big = json.dumps({"type": "start", "sample_rate": 8000, "language": "x" * 5000})
    with pytest.raises(ProtocolError, match="longer than the 4096 bytes"):
        p.parse_client(big)


def test_server_parser_ignores_unknown_fields_but_checks_known_ones():
    assert p.parse_server('{"type": "pong", "extra": 1}') == p.Pong()
    with pytest.raises(ProtocolError):
        p.parse_server('{"type": "final", "utterance": 1, "text": 5, "start": 0, "end": 1}')
    with pytest.raises(ProtocolError):
        p.parse_server('{"type": "final", "utterance": 1, "text": "a", "start": NaN, "end": 1}')


def test_encode_refuses_foreign_objects():
    with pytest.raises(ProtocolError, match="not a protocol message"):
        p.encode(SpeechStarted(1, 0.0))  # type: ignore[arg-type]


def test_events_map_to_messages():
    assert p.from_event(SpeechStarted(3, 1.23456)) == p.SpeechStartedMessage(3, 1.235)
    assert p.from_event(SpeechEnded(3, 1.0, 2.0, True)) == p.SpeechEndedMessage(3, 1.0, 2.0, True)
    assert p.from_event(PartialTranscript(3, "a b", "c")) == p.Partial(3, "a b", "c")
    final = FinalTranscript(3, "a b", 1.0, 2.0, "en", 0.9, (Word(1.1, 1.2, "a", 0.5),))
    msg = p.from_event(final)
    assert msg == p.Final(3, "a b", 1.0, 2.0, (p.WordInfo(1.1, 1.2, "a", 0.5),), "en")
    assert p.parse_server(p.encode(msg)) == msg  # type: ignore[arg-type]
    from harken.events import TranscriptionStarted

    assert p.from_event(TranscriptionStarted(3, 1.0)) is None
