"""Fuzzing harken's one audio decoder, which reads uploads from the network.

A damaged or hostile file is an AudioSourceError (or BackendNotInstalled, when only soundfile
could tell), never another exception type: the upload endpoint answers those with a 400,
anything else would be a 500. Whatever decodes is float32 mono in [-1, 1] at a positive rate.
"""

from __future__ import annotations

import io
import sys
import wave

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harken.errors import AudioSourceError, BackendNotInstalled
from harken.sources.file import decode_audio


def _wav(channels: int = 2, width: int = 3, rate: int = 22050, frames: int = 100) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(range(256)) * (frames * channels * width // 256 + 1))
    return buf.getvalue()


GOOD = _wav()

DAMAGED = [
    # A fmt chunk whose size points past the data: wave's chunk reader raised RuntimeError.
    b'RIFF|\x02\x00\x00WAVEfmt \x10\x00\x00\x91\x01\x00\x02\x00"V\x00\x00\xcc\x04\x02\x00'
    b'\x06\x00\x18\x00d\xfftaX\x02\x00\x00',
    # 40450 channels: the converter refused them with AudioFormatError.
    GOOD[:22] + (40450).to_bytes(2, "little") + GOOD[24:],
    GOOD[:30],  # cut inside the header
    b"",
]


def decode_or_refuse(data: bytes) -> None:
    try:
        audio, rate = decode_audio(data)
    except (AudioSourceError, BackendNotInstalled):
        return
    assert rate > 0 and audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size == 0 or float(np.max(np.abs(audio))) <= 1.0


@pytest.mark.parametrize("soundfile", [True, False], ids=["soundfile", "stdlib"])
@pytest.mark.parametrize("data", DAMAGED, ids=["chunk-size", "channels", "cut", "empty"])
def test_damaged_wav_is_refused_as_audio_source_error(data: bytes, soundfile: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if soundfile:
        pytest.importorskip("soundfile")
    else:
        monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises((AudioSourceError, BackendNotInstalled)):
        decode_audio(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 59), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, len(GOOD)))
def test_mutated_wav_headers(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(GOOD)
    for at, value in edits:
        data[at] = value
    decode_or_refuse(bytes(data[:cut]))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes(data: bytes) -> None:
    decode_or_refuse(data)
