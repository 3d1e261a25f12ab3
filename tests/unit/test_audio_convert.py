"""harken.audio: conversion to float32 mono, G.711, PCM16 output, and streaming resampling."""

from __future__ import annotations

import logging
import struct
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harken.audio import (
    StreamResampler,
    alaw_to_float32,
    check_sample_rate,
    float32_to_pcm16,
    to_float32_mono,
    ulaw_to_float32,
)
from harken.errors import AudioFormatError

# ---------------------------------------------------------------------------------------------
# arrays


def test_int16_is_scaled_by_1_over_32768() -> None:
    x = np.array([0, 16384, -32768, 32767, -1], dtype=np.int16)
    out = to_float32_mono(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([0, 0.5, -1, 32767 / 32768, -1 / 32768],
                                                dtype=np.float32))


def test_big_endian_int16_array_is_read_by_value() -> None:
    x = np.array([16384, -8192], dtype=">i2")
    np.testing.assert_array_equal(to_float32_mono(x), [0.5, -0.25])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_is_taken_as_is_and_copied(dtype: type) -> None:
    x = np.array([0.0, 0.25, -0.75, 1.0, -1.0], dtype=dtype)
    out = to_float32_mono(x)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, x.astype(np.float32))
    x[0] = 0.5  # the caller may reuse its buffer (sounddevice does)
    assert out[0] == 0.0


def test_float_overshoot_up_to_1_5_is_clipped() -> None:
    out = to_float32_mono(np.array([1.2, -1.5, 0.3], dtype=np.float32))
    np.testing.assert_array_equal(out, np.array([1.0, -1.0, 0.3], dtype=np.float32))


@pytest.mark.parametrize("peak", [1.5001, 2.0, 1000.0, -32768.0])
def test_float_peak_above_1_5_looks_like_int16_and_is_refused(peak: float) -> None:
    x = np.array([0.0, peak, 0.1], dtype=np.float64)
    with pytest.raises(AudioFormatError, match="int16"):
        to_float32_mono(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_are_refused_with_the_sample_index(bad: float, dtype: type) -> None:
    x = np.zeros(10, dtype=dtype)
    x[7] = bad
    with pytest.raises(AudioFormatError, match=r"NaN/inf at sample 7"):
        to_float32_mono(x)


def test_nan_in_2d_audio_reports_the_frame_index() -> None:
    x = np.zeros((6, 2), dtype=np.float32)
    x[4, 1] = np.nan
    with pytest.raises(AudioFormatError, match=r"sample 4\b"):
        to_float32_mono(x)


def test_float64_beyond_float32_range_is_refused_not_overflowed() -> None:
    with pytest.raises(AudioFormatError):
        to_float32_mono(np.array([1e300], dtype=np.float64))


@pytest.mark.parametrize(
    "dtype", [np.int32, np.uint8, np.int8, np.int64, np.uint16, np.float16, np.complex64,
              np.bool_, object],
)
def test_other_dtypes_are_refused_naming_dtype_and_accepted_ones(dtype: type) -> None:
    x = np.zeros(8, dtype=dtype)
    with pytest.raises(AudioFormatError) as info:
        to_float32_mono(x)
    message = str(info.value)
    assert str(np.dtype(dtype)) in message
    assert "int16, float32 or float64" in message


def test_non_audio_objects_are_refused() -> None:
    with pytest.raises(AudioFormatError, match="numpy array or bytes"):
        to_float32_mono([0.0, 0.1])  # type: ignore[arg-type]


def test_2d_frames_by_channels_is_averaged() -> None:
    x = np.array([[1000, 3000], [-2000, 2000], [32767, 32767]], dtype=np.int16)
    np.testing.assert_allclose(to_float32_mono(x), [2000 / 32768, 0.0, 32767 / 32768],
                               rtol=0, atol=1e-7)
    # channels may repeat the array's channel count
    assert to_float32_mono(x, channels=2).shape == (3,)


def test_2d_channels_mismatch_and_3d_are_refused() -> None:
    x = np.zeros((10, 2), dtype=np.float32)
    with pytest.raises(AudioFormatError, match="channels=3"):
        to_float32_mono(x, channels=3)
    with pytest.raises(AudioFormatError, match="shape"):
        to_float32_mono(np.zeros((2, 2, 2), dtype=np.float32))


def test_1d_with_channels_is_interleaved() -> None:
    x = np.array([0.2, 0.4, 0.6, 0.8, -0.5, 0.5], dtype=np.float32)
    np.testing.assert_allclose(to_float32_mono(x, channels=2), [0.3, 0.7, 0.0], atol=1e-7)
    with pytest.raises(AudioFormatError, match="multiple of 4"):
        to_float32_mono(x, channels=4)


@pytest.mark.parametrize("channels", [0, -1, 65, 2.0, True, "2"])
def test_bad_channel_counts_are_refused(channels: object) -> None:
    with pytest.raises(AudioFormatError, match="channels"):
        to_float32_mono(np.zeros(4, np.int16), channels=channels)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [b"", bytearray(), np.zeros(0, np.int16), np.zeros(0, np.float32), np.zeros((0, 2))],
)
def test_empty_input_gives_an_empty_float32_array(data: object) -> None:
    out = to_float32_mono(data)  # type: ignore[arg-type]
    assert out.dtype == np.float32 and out.shape == (0,)


def test_huge_input_ten_minutes_converts() -> None:
    x = np.full(16000 * 600, 1000, dtype=np.int16)
    out = to_float32_mono(x)
    assert out.shape == x.shape and out[-1] == np.float32(1000 / 32768)


# ---------------------------------------------------------------------------------------------
# bytes


def test_pcm16_bytes_are_little_endian() -> None:
    raw = struct.pack("<3h", 16384, -32768, 256)
    expected = [0.5, -1.0, 256 / 32768]
    for data in (raw, bytearray(raw), memoryview(raw)):
        np.testing.assert_array_equal(to_float32_mono(data), expected)
    np.testing.assert_array_equal(to_float32_mono(raw, encoding="pcm16"), expected)


def test_memoryview_of_an_int16_array_is_read_as_bytes() -> None:
    x = np.array([16384, -16384], dtype="<i2")
    np.testing.assert_array_equal(to_float32_mono(memoryview(x)), [0.5, -0.5])


def test_pcm16_odd_byte_count_is_refused() -> None:
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        to_float32_mono(b"\x00\x01\x02")


def test_pcm16_stereo_bytes_are_downmixed_and_checked() -> None:
    raw = struct.pack("<4h", 1000, 3000, -1000, -3000)
    np.testing.assert_allclose(to_float32_mono(raw, channels=2), [2000 / 32768, -2000 / 32768])
    with pytest.raises(AudioFormatError, match="multiple of 3"):
        to_float32_mono(raw, channels=3)


def test_float32_bytes() -> None:
    raw = struct.pack("<3f", 0.25, -0.5, 1.0)
    np.testing.assert_array_equal(to_float32_mono(raw, encoding="float32"), [0.25, -0.5, 1.0])
    with pytest.raises(AudioFormatError, match="multiple of 4"):
        to_float32_mono(raw[:-1], encoding="float32")
    with pytest.raises(AudioFormatError, match="NaN/inf at sample 1"):
        to_float32_mono(struct.pack("<3f", 0.0, float("nan"), 0.0), encoding="float32")
    with pytest.raises(AudioFormatError, match="int16"):
        to_float32_mono(struct.pack("<f", 12000.0), encoding="float32")


def test_unknown_encoding_is_refused_listing_the_accepted_ones() -> None:
    with pytest.raises(AudioFormatError, match="pcm16, float32, ulaw, alaw"):
        to_float32_mono(b"\x00\x00", encoding="mp3")


def test_array_encoding_must_match_dtype() -> None:
    with pytest.raises(AudioFormatError, match="int16 array"):
        to_float32_mono(np.zeros(2, np.float32), encoding="pcm16")
    with pytest.raises(AudioFormatError, match="uint8"):
        to_float32_mono(np.zeros(2, np.int16), encoding="ulaw")


# ---------------------------------------------------------------------------------------------
# G.711


def test_ulaw_known_values() -> None:
    # Values of the ITU G.711 mu-law expansion table, as 16-bit PCM.
    known = {0xFF: 0, 0x7F: 0, 0x00: -32124, 0x01: -31100, 0x80: 32124, 0xEF: 132,
             0xF0: 120, 0xFE: 8, 0x7E: -8}
    out = ulaw_to_float32(bytes(known)) * 32768
    np.testing.assert_array_equal(out, list(known.values()))


def test_alaw_known_values() -> None:
    # Values of the ITU G.711 A-law expansion table, as 16-bit PCM.
    known = {0x00: -5504, 0x01: -5248, 0x02: -6016, 0xD5: 8, 0x55: -8, 0x2A: -32256,
             0xAA: 32256, 0x80: 5504}
    out = alaw_to_float32(bytes(known)) * 32768
    np.testing.assert_array_equal(out, list(known.values()))


@pytest.mark.parametrize("decode", [ulaw_to_float32, alaw_to_float32])
def test_g711_tables_are_symmetric_and_cover_the_range(decode: object) -> None:
    values = decode(bytes(range(256))) * 32768  # type: ignore[operator]
    assert len(np.unique(values)) >= 255  # mu-law has two zeros
    assert values.max() == -values.min() and 32000 < values.max() <= 32767
    np.testing.assert_array_equal(np.sort(values), -np.sort(values)[::-1])


@pytest.mark.parametrize("encoding", ["ulaw", "mulaw", "MULAW", "alaw", "A-law"])
def test_g711_encodings_through_to_float32_mono(encoding: str) -> None:
    raw = bytes(range(256))
    decode = alaw_to_float32 if encoding.lower().startswith("a") else ulaw_to_float32
    np.testing.assert_array_equal(to_float32_mono(raw, encoding=encoding), decode(raw))
    # a uint8 array of codes is the same as bytes
    codes = np.frombuffer(raw, dtype=np.uint8)
    np.testing.assert_array_equal(to_float32_mono(codes, encoding=encoding), decode(raw))
    # stereo G.711 is downmixed
    assert to_float32_mono(raw, encoding=encoding, channels=2).shape == (128,)


def _ulaw_encode(x: np.ndarray) -> bytes:
    """Independent G.711 mu-law encoder (segment search), used to round-trip the decoder."""
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0)
    mag = np.minimum(np.abs(pcm), 32635) + 0x84
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def test_ulaw_round_trip_of_a_sine_is_within_quantisation_error() -> None:
    t = np.arange(800) / 8000
    x = 0.6 * np.sin(2 * np.pi * 440 * t)
    y = ulaw_to_float32(_ulaw_encode(x))
    err = np.abs(y - x)
    # mu-law steps grow with amplitude: at most 1/16 relative plus a small absolute floor
    assert np.all(err <= np.abs(x) / 16 + 1e-3)


# ---------------------------------------------------------------------------------------------
# sample rates and PCM16 output


@pytest.mark.parametrize("rate", [4000, 8000, 16000, 44100, 48000.0, np.int64(22050), 384000])
def test_check_sample_rate_accepts(rate: object) -> None:
    out = check_sample_rate(rate)
    assert type(out) is int and out == int(rate)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "rate", [3999, 384001, 0, -16000, 44100.5, float("nan"), float("inf"), "16000", None, True],
)
def test_check_sample_rate_refuses(rate: object) -> None:
    with pytest.raises(AudioFormatError, match=r"sample_rate must be .* got"):
        check_sample_rate(rate)


def test_pcm16_round_trip_is_exact_for_every_int16_value() -> None:
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert float32_to_pcm16(to_float32_mono(pcm)) == pcm.astype("<i2").tobytes()


def test_float32_to_pcm16_clips_and_refuses_bad_input() -> None:
    out = np.frombuffer(float32_to_pcm16(np.array([1.0, -1.0, 2.0, 0.5], np.float32)), "<i2")
    np.testing.assert_array_equal(out, [32767, -32768, 32767, 16384])
    with pytest.raises(AudioFormatError, match="NaN/inf at sample 1"):
        float32_to_pcm16(np.array([0.0, np.inf], np.float32))
    with pytest.raises(AudioFormatError):
        float32_to_pcm16(np.zeros((2, 2), np.float32))
    with pytest.raises(AudioFormatError):
        float32_to_pcm16(np.zeros(2, np.int16))


# ---------------------------------------------------------------------------------------------
# fuzzing: the only exception ever raised is AudioFormatError

_ENCODINGS = st.sampled_from([None, "pcm16", "float32", "ulaw", "mulaw", "alaw", "bogus"])


def _assert_valid_audio(out: np.ndarray) -> None:
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.ndim == 1
    assert np.all(np.isfinite(out))
    assert np.all(np.abs(out) <= 1.0)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=512), encoding=_ENCODINGS,
       channels=st.integers(min_value=-1, max_value=5))
def test_fuzz_bytes(data: bytes, encoding: str | None, channels: int) -> None:
    try:
        out = to_float32_mono(data, encoding=encoding, channels=channels)
    except AudioFormatError:
        return
    _assert_valid_audio(out)
    width = {"float32": 4, None: 2, "pcm16": 2}.get(encoding, 1)
    assert out.size == len(data) // width // channels


@settings(max_examples=200, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from([np.int16, np.float32, np.float64, np.int32, np.uint8,
                               np.complex64, np.bool_]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
    ),
    encoding=_ENCODINGS,
    channels=st.integers(min_value=1, max_value=3),
)
def test_fuzz_arrays(array: np.ndarray, encoding: str | None, channels: int) -> None:
    try:
        out = to_float32_mono(array, encoding=encoding, channels=channels)
    except AudioFormatError:
        return
    _assert_valid_audio(out)


# ---------------------------------------------------------------------------------------------
# resampling


def _sine(rate: int, seconds: float, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _chunked(rs: StreamResampler, x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    parts, i = [], 0
    while i < x.size:
        n = int(rng.choice([0, 1, 7, 160, 333, 1024, 4801]))
        parts.append(rs.process(x[i:i + n]))
        i += n
    parts.append(rs.flush())
    return np.concatenate(parts)


def _dominant_frequency(y: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.argmax(spectrum) * rate / y.size)


def _sine_fit_residual(y: np.ndarray, rate: int, freq: float = 1000.0) -> float:
    """Largest deviation from the best-fitting sine at ``freq`` (catches any glitch)."""
    t = np.arange(y.size) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    return float(np.max(np.abs(y - basis @ coef)))


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_stream_resampler_random_chunks(rate: int) -> None:
    pytest.importorskip("soxr")  # the numpy fallback has its own test below
    x = _sine(rate, 1.5)
    y = _chunked(StreamResampler(rate), x, seed=rate)
    expected = x.size * 16000 / rate
    assert abs(y.size - expected) <= 4
    assert abs(_dominant_frequency(y, 16000) - 1000) < 2
    # away from the filter's start-up and tail, the output is a clean sine: a dropped,
    # repeated or misplaced sample at a chunk join would leave a residual near 0.1-0.4
    middle = y[800:-800]
    assert _sine_fit_residual(middle, 16000) < 2e-3
    # and it matches resampling in one piece
    one = StreamResampler(rate)
    whole = np.concatenate([one.process(x), one.flush()])
    np.testing.assert_allclose(y, whole, atol=1e-4)


def test_stream_resampler_passthrough_and_reuse_after_flush() -> None:
    rs = StreamResampler(16000)
    assert rs.passthrough
    x = _sine(16000, 0.1)
    y = rs.process(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x and rs.flush().size == 0
    rs = StreamResampler(8000)
    first = np.concatenate([rs.process(_sine(8000, 0.5)), rs.flush()])
    second = np.concatenate([rs.process(_sine(8000, 0.5)), rs.flush()])
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_stream_resampler_refuses_bad_rates_and_input() -> None:
    with pytest.raises(AudioFormatError):
        StreamResampler(1000)
    with pytest.raises(AudioFormatError):
        StreamResampler(16000, 500000)
    rs = StreamResampler(8000)
    with pytest.raises(AudioFormatError, match="1-D float32"):
        rs.process(np.zeros(10, np.int16))
    with pytest.raises(AudioFormatError, match="1-D float32"):
        rs.process(np.zeros((10, 2), np.float32))


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_numpy_fallback_without_soxr(rate: int, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "soxr", None)  # makes "import soxr" fail
    caplog.set_level(logging.DEBUG, logger="harken.audio.resample")
    x = _sine(rate, 1.5)
    y = _chunked(StreamResampler(rate), x, seed=rate)
    assert "soxr is not installed" in caplog.text
    assert abs(y.size - x.size * 16000 / rate) <= 1
    assert abs(_dominant_frequency(y, 16000) - 1000) < 2
    one = StreamResampler(rate)
    whole = np.concatenate([one.process(x), one.flush()])
    np.testing.assert_allclose(y, whole, atol=1e-6)  # chunking changes nothing
    # linear interpolation of a 1 kHz tone: error bounded by (pi f / rate)^2 / 2 * amplitude
    bound = 0.5 * (np.pi * 1000 / rate) ** 2 / 2 + 1e-3
    assert _sine_fit_residual(y[100:-100], 16000) < bound


def test_importing_harken_audio_does_not_import_soxr() -> None:
    code = "import sys, harken.audio; print('soxr' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"
