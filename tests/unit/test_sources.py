"""harken.sources: PushSource, FileSource / read_audio, device selection, and
MicrophoneSource with a fake sounddevice (the real one is in tests/integration)."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import time
import types
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harken.audio import float32_to_pcm16
from harken.errors import (
    AudioFormatError,
    AudioSourceError,
    BackendNotInstalled,
    ConfigError,
    LifecycleError,
)
from harken.sources import (
    AudioSource,
    FileSource,
    MicrophoneSource,
    PushSource,
    decode_audio,
    open_audio,
    read_audio,
)
from harken.sources.devices import resolve_input_device


class CollectSink:
    """Collects what a source writes; optionally blocks in write() until released."""

    def __init__(self, block: bool = False) -> None:
        self.parts: list[np.ndarray] = []
        self.errors: list[BaseException] = []
        self.ended = threading.Event()
        self.failed = threading.Event()
        self.release = threading.Event()
        self.in_write = threading.Event()
        if not block:
            self.release.set()

    def write(self, samples: np.ndarray) -> None:
        assert samples.dtype == np.float32 and samples.ndim == 1
        self.parts.append(samples.copy())
        self.in_write.set()
        self.release.wait(10)

    def end(self) -> None:
        self.ended.set()

    def error(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.failed.set()

    @property
    def audio(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)


def _write_wav(path: Path, data: np.ndarray, rate: int, width: int = 2) -> Path:
    """Write integer PCM ``data`` ((frames,) or (frames, channels)) as a WAV file."""
    frames = data if data.ndim == 2 else data[:, None]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 3:
            v = frames.astype("<i4").reshape(-1, 1).view(np.uint8).reshape(-1, 4)[:, :3]
            w.writeframes(v.tobytes())
        else:
            w.writeframes(frames.astype(frames.dtype.newbyteorder("<")).tobytes())
    return path


def _float_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Write mono float32 ``samples`` as an IEEE-float WAV (format 3), which the standard
    library's ``wave`` cannot read, without soundfile."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
                     + b"fmt " + struct.pack("<I", len(fmt)) + fmt
                     + b"data" + struct.pack("<I", len(data)) + data)
    return path


def _tone(rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# PushSource


def test_push_source_is_an_audio_source_and_realtime() -> None:
    source = PushSource()
    assert isinstance(source, AudioSource) and source.realtime is True


def test_push_feed_before_start_after_end_and_after_close() -> None:
    source, sink = PushSource(), CollectSink()
    with pytest.raises(LifecycleError, match="before start"):
        source.feed(np.zeros(160, np.int16))
    source.start(sink)
    with pytest.raises(LifecycleError, match="start"):
        source.start(sink)
    source.feed(np.zeros(160, np.int16))
    source.end()
    assert sink.ended.is_set()
    with pytest.raises(LifecycleError, match="ended"):
        source.feed(np.zeros(160, np.int16))
    source.close()
    source.close()  # idempotent
    with pytest.raises(LifecycleError, match="closed"):
        source.feed(np.zeros(160, np.int16))
    with pytest.raises(LifecycleError):
        source.end()


def test_push_16k_passes_through_exactly_and_empty_chunks_do_nothing() -> None:
    source, sink = PushSource(), CollectSink()
    source.start(sink)
    pcm = (np.arange(-8000, 8000) * 2).astype(np.int16)
    source.feed(np.zeros(0, np.int16))
    source.feed(b"")
    assert sink.parts == []
    source.feed(pcm)
    source.feed(pcm.tobytes())
    source.end()
    expected = pcm.astype(np.float32) / 32768
    np.testing.assert_array_equal(sink.audio, np.concatenate([expected, expected]))
    source.close()


def test_push_telephone_ulaw_8k_is_resampled_to_16k() -> None:
    source, sink = PushSource(), CollectSink()
    source.start(sink)
    ulaw = bytes([0xFF, 0x80, 0x7F, 0x00]) * 2000  # 1 s at 8 kHz
    for i in range(0, len(ulaw), 160):  # 20 ms RTP-sized packets
        source.feed(ulaw[i:i + 160], 8000, encoding="ulaw")
    source.end()
    assert abs(sink.audio.size - 16000) <= 4
    assert np.all(np.isfinite(sink.audio)) and np.max(np.abs(sink.audio)) > 0.5
    source.close()


def test_push_rate_change_restarts_the_resampler() -> None:
    source, sink = PushSource(), CollectSink()
    source.start(sink)
    source.feed(_tone(48000, 0.5), 48000)
    source.feed(_tone(8000, 0.5), 8000)
    source.feed(_tone(16000, 0.5), 16000)
    source.end()
    assert abs(sink.audio.size - 24000) <= 8
    source.close()


def test_push_bad_chunk_raises_and_writes_nothing() -> None:
    source, sink = PushSource(), CollectSink()
    source.start(sink)
    bad = np.zeros(1600, np.float32)
    bad[1000] = np.nan
    with pytest.raises(AudioFormatError, match="sample 1000"):
        source.feed(bad)
    with pytest.raises(AudioFormatError, match="int32"):
        source.feed(np.zeros(10, np.int32))
    with pytest.raises(AudioFormatError, match="sample_rate"):
        source.feed(np.zeros(10, np.int16), 1000)
    assert sink.parts == []
    source.close()


def test_push_huge_chunk_reaches_the_sink_in_blocks_of_at_most_1s() -> None:
    source, sink = PushSource(), CollectSink()
    source.start(sink)
    three_minutes = np.zeros(48000 * 180, np.int16)
    three_minutes[::7] = 1000
    source.feed(three_minutes, 48000)
    source.end()
    sizes = [p.size for p in sink.parts]
    assert max(sizes) <= 16000
    assert abs(sum(sizes) - 16000 * 180) <= 8
    source.close()


def test_push_feed_is_thread_safe() -> None:
    source, sink = PushSource(), CollectSink()
    source.start(sink)
    errors: list[BaseException] = []

    def feeder(value: int) -> None:
        try:
            for _ in range(50):
                source.feed(np.full(320, value, np.int16))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=feeder, args=(v,)) for v in (100, 200, 300, 400)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors
    assert sink.audio.size == 4 * 50 * 320
    # chunks are never interleaved with one another
    for part in sink.parts:
        assert np.unique(part).size == 1
    source.close()


def test_push_backpressure_blocks_feed_and_close_stops_it() -> None:
    source, sink = PushSource(), CollectSink(block=True)
    source.start(sink)
    done = threading.Event()

    def feed() -> None:
        try:
            source.feed(np.zeros(16000 * 5, np.int16))
        finally:
            done.set()

    feeder = threading.Thread(target=feed)
    feeder.start()
    assert sink.in_write.wait(5)
    time.sleep(0.1)
    assert not done.is_set(), "feed() should wait while the sink applies backpressure"
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 0.5, "close() must not wait for the sink"
    sink.release.set()
    assert done.wait(5)
    feeder.join(5)
    assert len(sink.parts) <= 2  # it stopped after the block in progress


# ---------------------------------------------------------------------------------------------
# FileSource and read_audio


def test_file_source_int16_stereo_44k1_to_16k_mono(tmp_path: Path) -> None:
    left = _tone(44100, 2.0)
    stereo = np.stack([left, left], axis=1)
    path = _write_wav(tmp_path / "stereo.wav", (stereo * 32767).astype(np.int16), 44100)
    source = FileSource(path, chunk_ms=50)
    assert source.duration_s == pytest.approx(2.0)
    assert source.realtime is False and isinstance(source, AudioSource)
    sink = CollectSink()
    source.start(sink)
    assert sink.ended.wait(10)
    source.close()
    assert not sink.errors
    audio = sink.audio
    assert abs(audio.size - 32000) <= 4
    assert max(p.size for p in sink.parts) <= 2 * 800  # ~50 ms per write (the tail may be more)
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / audio.size - 440) < 2
    np.testing.assert_allclose(read_audio(path), audio, atol=1e-5)


def test_file_source_carries_real_speech(tmp_path: Path, espeak: Callable[..., np.ndarray]
                                         ) -> None:
    soxr = pytest.importorskip("soxr")

    speech = espeak("The quick brown fox jumps over the lazy dog.")
    at_48k = soxr.resample(speech, 16000, 48000).astype(np.float32)
    stereo = np.clip(np.stack([at_48k, at_48k], axis=1), -1, 1)
    path = _write_wav(tmp_path / "speech.wav", (stereo * 32767).astype(np.int16), 48000)
    sink = CollectSink()
    source = FileSource(str(path), chunk_ms=20)
    source.start(sink)
    assert sink.ended.wait(10)
    source.close()
    got = sink.audio
    assert abs(got.size - speech.size) <= 4
    n = min(got.size, speech.size)
    corr = np.corrcoef(got[:n], speech[:n])[0, 1]
    assert corr > 0.99


@pytest.mark.parametrize(
    ("width", "ints", "expected"),
    [
        (1, np.array([128, 192, 0, 255], np.uint8), [0.0, 0.5, -1.0, 127 / 128]),
        (2, np.array([0, 16384, -32768], np.int16), [0.0, 0.5, -1.0]),
        (3, np.array([0, 0x400000, -0x800000, 0x7FFFFF], np.int32),
         [0.0, 0.5, -1.0, 0x7FFFFF / 0x800000]),
        (4, np.array([0, 1 << 30, -(1 << 31)], np.int32), [0.0, 0.5, -1.0]),
    ],
)
def test_wav_sample_widths(tmp_path: Path, width: int, ints: np.ndarray,
                           expected: list[float]) -> None:
    path = _write_wav(tmp_path / f"w{width}.wav", ints, 16000, width=width)
    np.testing.assert_allclose(read_audio(path), expected, atol=1e-7)


def test_float_wav_is_read_with_soundfile(tmp_path: Path) -> None:
    soundfile = pytest.importorskip("soundfile")

    path = _float_wav(tmp_path / "float.wav", _tone(22050, 0.5), 22050)
    audio = read_audio(path)
    assert abs(audio.size - 8000) <= 4
    assert FileSource(path).duration_s == pytest.approx(0.5)
    flac = tmp_path / "tone.flac"
    soundfile.write(str(flac), _tone(16000, 0.25), 16000)
    assert abs(read_audio(flac).size - 4000) <= 1
    for source in (flac.read_bytes(), io.BytesIO(flac.read_bytes())):  # wave tried first
        audio, rate = decode_audio(source)
        assert rate == 16000 and abs(audio.size - 4000) <= 1


def test_non_wav_without_soundfile_names_the_extra(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = _float_wav(tmp_path / "float.wav", _tone(16000, 0.1), 16000)
    monkeypatch.setitem(sys.modules, "soundfile", None)  # hidden, where it is installed
    with pytest.raises(BackendNotInstalled, match=r'harken\[file\]'):
        read_audio(path)
    with pytest.raises(BackendNotInstalled, match="soundfile"):
        FileSource(path).start(CollectSink())


def test_one_decoder_for_paths_and_bytes_24_bit_without_soundfile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The upload endpoint and harken client decode bytes by the rules transcribe uses."""
    ints = np.array([[0, 0x400000], [-0x800000, 0x7FFFFF], [0x200000, -0x200000]], np.int32)
    path = _write_wav(tmp_path / "w24.wav", ints, 22050, width=3)  # stereo
    monkeypatch.setitem(sys.modules, "soundfile", None)  # the standard library alone
    expected = [0.25, (-1.0 + 0x7FFFFF / 0x800000) / 2, 0.0]
    for source in (path, str(path), path.read_bytes()):
        audio, rate = decode_audio(source)
        assert rate == 22050 and audio.dtype == np.float32
        np.testing.assert_allclose(audio, expected, atol=1e-7)
    reader = open_audio(path.read_bytes())  # the incremental API: blocks of frames
    try:
        assert (reader.rate, reader.frames) == (22050, 3)
        blocks = [reader.read(2), reader.read(2), reader.read(2)]
    finally:
        reader.close()
    assert [b.size for b in blocks] == [2, 1, 0]
    np.testing.assert_allclose(np.concatenate(blocks), expected, atol=1e-7)
    with path.open("rb") as stream:  # a binary file object: read in blocks, left open
        reader = open_audio(stream)
        first = reader.read(1)
        reader.close()
        assert not stream.closed
    np.testing.assert_allclose(first, expected[:1], atol=1e-7)
    with pytest.raises(BackendNotInstalled, match=r'harken\[file\]'):
        decode_audio(b"this is not audio at all" * 10)


def test_bytes_that_are_not_audio_are_an_audio_source_error() -> None:
    pytest.importorskip("soundfile")
    with pytest.raises(AudioSourceError, match="cannot read audio of 240 bytes"):
        decode_audio(b"this is not audio at all" * 10)


def test_file_source_bad_paths_and_options(tmp_path: Path) -> None:
    with pytest.raises(AudioSourceError, match="not found"):
        FileSource(tmp_path / "missing.wav")
    with pytest.raises(AudioSourceError, match="not found"):
        read_audio(tmp_path / "missing.wav")
    path = _write_wav(tmp_path / "ok.wav", np.zeros(160, np.int16), 16000)
    for chunk_ms in (0, 5, 20000, 1.5, True):
        with pytest.raises(ConfigError, match="chunk_ms"):
            FileSource(path, chunk_ms=chunk_ms)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="realtime"):
        FileSource(path, realtime="yes")  # type: ignore[arg-type]


def test_file_source_names_a_file_it_cannot_read(tmp_path: Path) -> None:
    pytest.importorskip("soundfile")  # without it, not-WAV means "install harken[file]"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioSourceError, match="cannot read"):
        FileSource(garbage).start(CollectSink())


def test_file_source_lifecycle(tmp_path: Path) -> None:
    path = _write_wav(tmp_path / "short.wav", np.zeros(1600, np.int16), 16000)
    source = FileSource(path)
    source.close()  # close before start is fine
    with pytest.raises(LifecycleError):
        source.start(CollectSink())
    source = FileSource(path)
    sink = CollectSink()
    source.start(sink)
    with pytest.raises(LifecycleError):
        source.start(sink)
    assert sink.ended.wait(5)
    source.close()
    source.close()
    assert sink.audio.size == 1600


def test_file_source_realtime_pacing_and_close_midway(tmp_path: Path) -> None:
    path = _write_wav(tmp_path / "long.wav", np.zeros(16000 * 5, np.int16), 16000)
    sink = CollectSink()
    source = FileSource(path, realtime=True, chunk_ms=20)
    started = time.monotonic()
    source.start(sink)
    time.sleep(0.5)
    source.close()
    elapsed = time.monotonic() - started
    assert elapsed < 1.5
    delivered_s = sink.audio.size / 16000
    assert 0.3 <= delivered_s <= elapsed + 0.1, "delivery should follow the clock"
    assert not sink.ended.is_set(), "a stream cut off by close() has no end()"
    assert not sink.errors


def test_file_source_reports_sink_failures_through_error(tmp_path: Path) -> None:
    path = _write_wav(tmp_path / "a.wav", np.zeros(16000, np.int16), 16000)

    class FailingSink(CollectSink):
        def write(self, samples: np.ndarray) -> None:
            raise RuntimeError("disk full")

    sink = FailingSink()
    source = FileSource(path)
    source.start(sink)
    assert sink.failed.wait(5)
    source.close()
    (error,) = sink.errors
    assert isinstance(error, AudioSourceError) and "disk full" in str(error)
    assert isinstance(error.__cause__, RuntimeError)
    assert not sink.ended.is_set()


def test_file_source_close_does_not_hang_on_a_blocked_sink(tmp_path: Path) -> None:
    path = _write_wav(tmp_path / "a.wav", np.zeros(16000 * 3, np.int16), 16000)
    sink = CollectSink(block=True)
    source = FileSource(path)
    source.start(sink)
    assert sink.in_write.wait(5)
    threading.Timer(0.2, sink.release.set).start()
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 2.5
    assert not sink.ended.is_set()


def test_pcm16_writer_and_reader_agree(tmp_path: Path) -> None:
    audio = _tone(16000, 0.2)
    path = tmp_path / "rt.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(float32_to_pcm16(audio))
    np.testing.assert_allclose(read_audio(path), audio, atol=1 / 32768)


# ---------------------------------------------------------------------------------------------
# device selection (pure)

DEVICES = [
    {"index": 0, "name": "HDA Intel PCH: ALC257 Analog (hw:0,0)", "channels": 2,
     "default_samplerate": 44100.0, "is_default": False},
    {"index": 3, "name": "USB Microphone", "channels": 1, "default_samplerate": 48000.0,
     "is_default": False},
    {"index": 5, "name": "pulse", "channels": 32, "default_samplerate": 44100.0,
     "is_default": False},
    {"index": 6, "name": "default", "channels": 32, "default_samplerate": 44100.0,
     "is_default": True},
]


def test_resolve_input_device() -> None:
    assert resolve_input_device(None, DEVICES) == 6
    assert resolve_input_device(3, DEVICES) == 3
    assert resolve_input_device("usb", DEVICES) == 3
    assert resolve_input_device("ALC257", DEVICES) == 0
    assert resolve_input_device("Default", DEVICES) == 6  # exact beats substring
    with pytest.raises(AudioSourceError, match="USB Microphone"):
        resolve_input_device("bluetooth", DEVICES)
    with pytest.raises(AudioSourceError, match="does not exist"):
        resolve_input_device(4, DEVICES)
    with pytest.raises(AudioSourceError, match="no input device"):
        resolve_input_device(None, [])


# ---------------------------------------------------------------------------------------------
# MicrophoneSource without hardware


@pytest.mark.parametrize(
    "kwargs",
    [{"device": -1}, {"device": ""}, {"device": 1.5}, {"device": True},
     {"block_ms": 0}, {"block_ms": 2000}, {"block_ms": 32.0}],
)
def test_microphone_constructor_validates(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        MicrophoneSource(**kwargs)


def test_microphone_bad_sample_rate() -> None:
    with pytest.raises(AudioFormatError, match="sample_rate"):
        MicrophoneSource(sample_rate=100)


def test_constructing_sources_imports_no_audio_backend() -> None:
    code = (
        "import sys\n"
        "from harken.sources import MicrophoneSource, PushSource\n"
        "MicrophoneSource('usb', sample_rate=48000); PushSource()\n"
        "import threading\n"
        "print(sorted(m for m in ('sounddevice', 'soundfile', 'soxr') if m in sys.modules),"
        " threading.active_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[] 1"


def test_microphone_without_sounddevice_names_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    source = MicrophoneSource()
    with pytest.raises(BackendNotInstalled, match=r'harken\[mic\]'):
        source.start(CollectSink())
    source.close()


class _FakeStream:
    """Stands in for sounddevice.InputStream; the test plays PortAudio's callback thread."""

    def __init__(self, owner: _FakeSoundDevice, **kwargs: Any) -> None:
        if kwargs["channels"] < owner.min_channels:
            raise owner.PortAudioError("Invalid number of channels")
        self.kwargs = kwargs
        self.channels = kwargs["channels"]
        self.callback = kwargs["callback"]
        self.finished_callback = kwargs["finished_callback"]
        self.active = False
        self.closed = False
        owner.streams.append(self)

    def start(self) -> None:
        self.active = True

    def abort(self, ignore_errors: bool = True) -> None:
        self.active = False

    def close(self, ignore_errors: bool = True) -> None:
        self.closed = True

    def die(self) -> None:
        self.active = False
        self.finished_callback()


class _FakeSoundDevice(types.ModuleType):
    def __init__(self, min_channels: int = 1) -> None:
        super().__init__("sounddevice")
        self.PortAudioError = type("PortAudioError", (Exception,), {})
        self.min_channels = min_channels
        self.streams: list[_FakeStream] = []
        self.default = types.SimpleNamespace(device=[2, 2])

    def query_devices(self, kind: str | None = None) -> Any:
        devices = [
            {"index": 0, "name": "Speakers", "max_input_channels": 0,
             "default_samplerate": 48000.0},
            {"index": 2, "name": "Studio Mic", "max_input_channels": 2,
             "default_samplerate": 48000.0},
        ]
        return devices[1] if kind == "input" else devices

    def InputStream(self, **kwargs: Any) -> _FakeStream:  # noqa: N802 - sounddevice's name
        return _FakeStream(self, **kwargs)


def test_microphone_with_fake_device_downmixes_resamples_and_counts_drops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeSoundDevice(min_channels=2)  # a device that refuses mono
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    with pytest.raises(AudioSourceError, match="Studio Mic"):
        MicrophoneSource("nonexistent").start(CollectSink())
    sink = CollectSink()
    source = MicrophoneSource("studio", block_ms=20)
    source.start(sink)
    try:
        stream = fake.streams[-1]
        assert stream.kwargs["samplerate"] == 48000 and stream.channels == 2
        assert stream.kwargs["blocksize"] == 960 and stream.kwargs["dtype"] == "float32"
        assert source.device_info == {"index": 2, "name": "Studio Mic", "sample_rate": 48000,
                                      "channels": 2}
        tone = _tone(48000, 1.0)
        for i in range(0, tone.size, 960):
            block = np.stack([tone[i:i + 960], -0.0 * tone[i:i + 960]], axis=1)
            stream.callback(block, 960, None, None)
            time.sleep(0.001)
        deadline = time.monotonic() + 5
        while sink.audio.size < 15500 and time.monotonic() < deadline:
            time.sleep(0.01)
        audio = sink.audio
        assert 15500 <= audio.size <= 16000  # the resampler holds back a few ms
        # left carried a 0.5-amplitude tone, right silence: the mono mix peaks near 0.25
        assert 0.23 < np.max(np.abs(audio[1000:])) < 0.27
        assert source.dropped_blocks == 0
        # a drain thread that falls behind: the callback drops and counts, never blocks
        sink.release.clear()
        started = time.monotonic()
        for _ in range(500):
            stream.callback(np.zeros((960, 2), np.float32), 960, None, "input overflow")
        assert time.monotonic() - started < 1.0
        assert source.dropped_blocks > 0 and source.status_events == 500
    finally:
        sink.release.set()
        source.close()
    assert stream.closed and not stream.active
    assert not sink.errors


def test_microphone_device_loss_reaches_sink_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeSoundDevice()
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    sink = CollectSink()
    source = MicrophoneSource()
    source.start(sink)
    stream = fake.streams[-1]
    assert stream.channels == 1 and source.device_info is not None
    stream.callback(np.zeros((512, 1), np.float32), 512, None, None)
    stream.die()
    assert sink.failed.wait(5)
    source.close()
    (error,) = sink.errors
    assert isinstance(error, AudioSourceError) and "disconnected" in str(error)
    with pytest.raises(LifecycleError):
        source.start(sink)
