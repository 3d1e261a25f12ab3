"""OpenAI-compatible POST /v1/audio/transcriptions, driven by the official openai package.

A real server on 127.0.0.1 (in a "harken-server" thread, scripted engine, energy VAD) and
the ``openai`` client with ``base_url`` pointing at it.
"""

from __future__ import annotations

import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from server_helpers import RATE, config, write_wav
from server_helpers import bursts as _bursts

from harken.server.app import BackgroundServer

openai = pytest.importorskip("openai")

def bursts(n: int, rate: int = RATE) -> np.ndarray:
    """0.8 s of silence, then n bursts of 1 s tone, each followed by 0.8 s of silence."""
    return _bursts(n, rate, lead_s=0.8)


def upload(path: Path) -> tuple[str, bytes, str]:
    """A file for the openai client, read at once (no open handle left behind)."""
    return path.name, path.read_bytes(), "audio/wav"


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(config(max_upload_bytes=2_000_000)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: BackgroundServer) -> Iterator[object]:
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0,
                       timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wav(tmp_path_factory.mktemp("audio") / "three.wav", bursts(3))


def test_json(client, three):
    result = client.audio.transcriptions.create(model="whisper-1", file=upload(three))
    parts = result.text.split("speech ")
    assert len(parts) == 4 and parts[0] == "", result.text  # one text per utterance


def test_text(client, three):
    text = client.audio.transcriptions.create(model="whisper-1", file=upload(three),
                                              response_format="text")
    assert isinstance(text, str) and text.count("speech") == 3


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles(client, three, fmt):
    body = client.audio.transcriptions.create(model="whisper-1", file=upload(three),
                                              response_format=fmt)
    sep = "," if fmt == "srt" else "."
    assert body.count(" --> ") == 3
    assert f"00:00:00{sep}" in body or f"00:00:01{sep}" in body
    if fmt == "vtt":
        assert body.startswith("WEBVTT")
    else:
        assert body.startswith("1\n")


def test_verbose_json_with_words(client, three):
    result = client.audio.transcriptions.create(
        model="whisper-1", file=upload(three), response_format="verbose_json",
        timestamp_granularities=["word", "segment"], language="en")
    assert result.language == "en"
    assert abs(result.duration - 0.8 - 3 * 1.8) < 0.01
    assert len(result.segments) == 3
    starts = [s.start for s in result.segments]
    # Utterances start at 0.8, 2.6, 4.4 s (minus the VAD's pre-roll).
    for start, expected in zip(starts, (0.8, 2.6, 4.4), strict=True):
        assert expected - 0.45 <= start <= expected + 0.1
    assert result.words and result.words[0].word == "speech"
    assert all(w.start <= w.end for w in result.words)


def test_stream_sends_a_delta_per_utterance_then_done(client, three):
    events = list(client.audio.transcriptions.create(model="gpt-4o-transcribe",
                                                     file=upload(three), stream=True))
    types = [e.type for e in events]
    assert types == ["transcript.text.delta"] * 3 + ["transcript.text.done"]
    joined = "".join(e.delta for e in events[:-1])
    assert joined == events[-1].text and joined.count("speech") == 3


def test_stereo_44k_file(client, tmp_path):
    audio = bursts(1, 44100)
    path = write_wav(tmp_path / "stereo.wav", np.repeat(audio, 2), 44100, channels=2)
    result = client.audio.transcriptions.create(model="whisper-1", file=upload(path))
    words = result.text.split()
    assert len(words) == 5 and 1.0 < float(words[1]) < 2.0  # ~1.4 s of 16 kHz audio


def test_a_24_bit_wav_is_read_without_soundfile(client, tmp_path, monkeypatch):
    """The upload endpoint uses harken's one decoder: 24-bit WAV works as in transcribe."""
    monkeypatch.setitem(sys.modules, "soundfile", None)  # the server runs in this process
    ints = np.round(bursts(2) * 0x7FFFFF).astype("<i4")
    raw = ints.reshape(-1, 1).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    path = tmp_path / "w24.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(RATE)
        w.writeframes(raw)
    result = client.audio.transcriptions.create(model="whisper-1", file=upload(path))
    assert result.text.count("speech") == 2, result.text


def test_bad_requests_get_openai_shaped_errors(client, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio")
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="whisper-1", file=upload(bad))
    assert info.value.status_code == 400
    assert info.value.body["param"] == "file"
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.audio.transcriptions.create(model="whisper-1", file=upload(bad),
                                           response_format="mp4")  # type: ignore[arg-type]
    big = write_wav(tmp_path / "big.wav", np.zeros(RATE * 70, np.float32))  # 2.2 MB
    with pytest.raises(openai.APIStatusError) as too_big:
        client.audio.transcriptions.create(model="whisper-1", file=upload(big))
    assert too_big.value.status_code == 413


def test_silence_gives_empty_text_and_the_server_is_idle_after(client, server, tmp_path):
    path = write_wav(tmp_path / "silence.wav", np.zeros(RATE * 2, np.float32))
    result = client.audio.transcriptions.create(model="whisper-1", file=upload(path))
    assert result.text == ""
    host = server.server.engine
    assert server.call(lambda: (host.sessions, host.queued, host.in_engine)) == (0, 0, 0)
    metrics = server.call(server.server.stats.http_requests.copy)
    assert metrics.get("200", 0) >= 1
