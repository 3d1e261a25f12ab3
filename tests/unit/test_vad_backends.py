"""Fast tests of the VAD backends: no model is loaded (Silero runs on a fake session)."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from harken.config import VadConfig
from harken.errors import (
    AudioFormatError,
    BackendNotInstalled,
    ConfigError,
    LifecycleError,
)
from harken.vad import FRAME_SAMPLES, VoiceActivityDetector, check_frame, create_vad
from harken.vad.backends import VAD_BACKENDS
from harken.vad.energy import EnergyVad, frame_dbfs
from harken.vad.gated import GatedVad
from harken.vad.silero import CONTEXT_SAMPLES, SileroModelNotFound, SileroVad
from harken.vad.webrtc import WebRtcVad

RATE = 16000
HAS_WEBRTC = importlib.util.find_spec("webrtcvad") is not None


def frames_of(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME_SAMPLES
    return x[: n * FRAME_SAMPLES].astype(np.float32).reshape(n, FRAME_SAMPLES)


def tone(freq: float, dbfs: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    amp = 10 ** (dbfs / 20) * np.sqrt(2)  # RMS of a sine is amp / sqrt(2)
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(dbfs: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(RATE * seconds)) * 10 ** (dbfs / 20)).astype(np.float32)


# ---------------------------------------------------------------- energy


def test_frame_dbfs_measures_rms_level() -> None:
    assert frame_dbfs(np.zeros(FRAME_SAMPLES, np.float32)) == -120.0
    assert frame_dbfs(np.ones(FRAME_SAMPLES, np.float32)) == pytest.approx(0.0, abs=1e-6)
    for level in (-10.0, -30.0, -50.0):
        measured = [frame_dbfs(f) for f in frames_of(noise(level))]
        assert np.median(measured) == pytest.approx(level, abs=0.5)


def test_energy_vad_silence_tone_and_noise() -> None:
    vad = EnergyVad(threshold_db=-45.0)
    vad.load()
    silence = frames_of(np.zeros(RATE, np.float32))
    assert not any(vad.is_speech(f) for f in silence)
    quiet = frames_of(noise(-60.0))
    assert not any(vad.is_speech(f) for f in quiet)
    # It only measures level: a loud tone or noise is "speech" to it, by design.
    assert all(vad.is_speech(f) for f in frames_of(tone(440.0, -20.0)))
    assert all(vad.is_speech(f) for f in frames_of(noise(-30.0)))
    # Threshold is inclusive and in dBFS: -44 passes a -45 gate, -46 does not.
    assert all(vad.is_speech(f) for f in frames_of(tone(1000.0, -44.0)))
    assert not any(vad.is_speech(f) for f in frames_of(tone(1000.0, -46.0)))
    vad.reset()
    vad.close()


def test_energy_vad_threshold_follows_argument() -> None:
    loud_only = EnergyVad(threshold_db=-10.0)
    frames = frames_of(tone(300.0, -20.0))
    assert not any(loud_only.is_speech(f) for f in frames)
    assert all(EnergyVad(threshold_db=-25.0).is_speech(f) for f in frames)


@pytest.mark.parametrize("bad", [1.0, -121.0, float("nan"), float("inf"), "loud", True, None])
def test_energy_vad_rejects_bad_threshold(bad: Any) -> None:
    with pytest.raises(ConfigError, match="threshold_db"):
        EnergyVad(threshold_db=bad)


# ---------------------------------------------------------------- frame validation


BAD_FRAMES = [
    pytest.param(np.zeros(FRAME_SAMPLES - 1, np.float32), "512", id="short"),
    pytest.param(np.zeros(FRAME_SAMPLES + 1, np.float32), "512", id="long"),
    pytest.param(np.zeros((2, FRAME_SAMPLES // 2), np.float32), "1-D", id="2-d"),
    pytest.param(np.zeros(FRAME_SAMPLES, np.float64), "float32", id="float64"),
    pytest.param(np.zeros(FRAME_SAMPLES, np.int16), "float32", id="int16"),
    pytest.param([0.0] * FRAME_SAMPLES, "numpy", id="list"),
    pytest.param(np.full(FRAME_SAMPLES, np.nan, np.float32), "NaN", id="nan"),
    pytest.param(np.full(FRAME_SAMPLES, np.inf, np.float32), "NaN", id="inf"),
]


@pytest.mark.parametrize(("frame", "said"), BAD_FRAMES)
def test_check_frame_rejects_what_is_not_a_frame(frame: Any, said: str) -> None:
    with pytest.raises(AudioFormatError, match=said):
        check_frame(frame)


@pytest.mark.parametrize("make", [EnergyVad, WebRtcVad, SileroVad], ids=lambda c: c.__name__)
@pytest.mark.parametrize(("frame", "said"), BAD_FRAMES[:5])
def test_every_backend_validates_frames_before_anything_else(make: Any, frame: Any,
                                                             said: str) -> None:
    vad = make()  # not loaded: the frame is checked first, with no optional import
    with pytest.raises(AudioFormatError, match=said):
        vad.is_speech(frame)


def test_check_frame_accepts_a_frame() -> None:
    check_frame(np.zeros(FRAME_SAMPLES, np.float32))
    check_frame(np.linspace(-1, 1, FRAME_SAMPLES, dtype=np.float32))


# ---------------------------------------------------------------- webrtc


@pytest.mark.parametrize("bad", [-1, 4, 1.5, "3", True, None])
def test_webrtc_rejects_bad_sensitivity(bad: Any) -> None:
    with pytest.raises(ConfigError, match="sensitivity"):
        WebRtcVad(sensitivity=bad)


def test_webrtc_rejects_bad_rule() -> None:
    with pytest.raises(ConfigError, match="rule"):
        WebRtcVad(rule="all")  # type: ignore[arg-type]


def test_webrtc_needs_load_and_not_after_close() -> None:
    vad = WebRtcVad()
    frame = np.zeros(FRAME_SAMPLES, np.float32)
    with pytest.raises(LifecycleError, match="load"):
        vad.is_speech(frame)
    if not HAS_WEBRTC:
        pytest.skip("webrtcvad-wheels is not installed")
    vad.load()
    vad.load()  # idempotent
    assert vad.is_speech(frame) is False
    vad.close()
    vad.close()
    with pytest.raises(LifecycleError, match="closed"):
        vad.is_speech(frame)


def test_webrtc_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "webrtcvad", None)
    with pytest.raises(BackendNotInstalled, match=r"harken\[webrtc\]") as info:
        WebRtcVad().load()
    assert info.value.package == "webrtcvad-wheels"


@pytest.mark.skipif(not HAS_WEBRTC, reason="webrtcvad-wheels is not installed")
@pytest.mark.parametrize("rule", ["first30", "any10"])
def test_webrtc_silence_is_not_speech_loud_noise_is(rule: Any) -> None:
    vad = WebRtcVad(3, rule=rule)
    vad.load()
    assert not any(vad.is_speech(f) for f in frames_of(np.zeros(RATE, np.float32)))
    # The known weakness that makes it only a gate: loud white noise passes.
    hits = np.mean([vad.is_speech(f) for f in frames_of(noise(-20.0, 2.0))])
    assert hits > 0.9
    vad.close()


# ---------------------------------------------------------------- silero (fake session)


class FakeInput:
    def __init__(self, name: str) -> None:
        self.name = name


class FakeSileroSession:
    """Records what SileroVad feeds the network; the "probability" is the frame's peak."""

    def __init__(self, names: tuple[str, ...] = ("input", "state", "sr")) -> None:
        self.names = names
        self.inputs: list[dict[str, np.ndarray]] = []

    def get_inputs(self) -> list[FakeInput]:
        return [FakeInput(n) for n in self.names]

    def run(self, _outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.inputs.append({k: np.array(v, copy=True) for k, v in feeds.items()})
        frame = feeds["input"][0, CONTEXT_SAMPLES:]
        prob = np.array([[float(np.abs(frame).max())]], np.float32)
        if "state" in feeds:
            return [prob, feeds["state"] + 1.0]
        return [prob.reshape(1), feeds["h"] + 1.0, feeds["c"] + 2.0]


def test_silero_feeds_context_and_carries_state() -> None:
    session = FakeSileroSession()
    vad = SileroVad(threshold=0.5, session=session)
    vad.load()
    rng = np.random.default_rng(3)
    frames = [(rng.uniform(-0.3, 0.3, FRAME_SAMPLES)).astype(np.float32) for _ in range(3)]
    frames[1][7] = 0.9
    assert [vad.is_speech(f) for f in frames] == [False, True, False]
    assert vad.probability(frames[0]) == pytest.approx(np.abs(frames[0]).max())
    first, second, third = session.inputs[:3]
    assert first["input"].shape == (1, CONTEXT_SAMPLES + FRAME_SAMPLES)
    assert first["input"].dtype == np.float32
    np.testing.assert_array_equal(first["input"][0, :CONTEXT_SAMPLES], 0.0)
    np.testing.assert_array_equal(second["input"][0, :CONTEXT_SAMPLES],
                                  frames[0][-CONTEXT_SAMPLES:])
    np.testing.assert_array_equal(third["input"][0, CONTEXT_SAMPLES:], frames[2])
    assert int(first["sr"]) == RATE and first["sr"].dtype == np.int64
    assert first["state"].shape == (2, 1, 128)
    np.testing.assert_array_equal(third["state"], 2.0)  # the state came back twice

    vad.skip(frames[2] * 0 + 0.25)
    vad.probability(frames[0])
    np.testing.assert_array_equal(session.inputs[-1]["input"][0, :CONTEXT_SAMPLES], 0.25)

    vad.reset()
    vad.probability(frames[0])
    np.testing.assert_array_equal(session.inputs[-1]["input"][0, :CONTEXT_SAMPLES], 0.0)
    np.testing.assert_array_equal(session.inputs[-1]["state"], 0.0)
    vad.close()
    with pytest.raises(LifecycleError, match="closed"):
        vad.probability(frames[0])


def test_silero_h_c_interface_of_faster_whisper_model() -> None:
    session = FakeSileroSession(("input", "h", "c"))
    vad = SileroVad(session=session)
    vad.load()
    frame = np.full(FRAME_SAMPLES, 0.75, np.float32)
    assert vad.is_speech(frame)
    assert vad.probability(frame) == pytest.approx(0.75)
    last = session.inputs[-1]
    assert set(last) == {"input", "h", "c"}
    np.testing.assert_array_equal(last["h"], 1.0)
    np.testing.assert_array_equal(last["c"], 2.0)


def test_silero_rejects_a_model_with_other_inputs() -> None:
    with pytest.raises(ConfigError, match=r"input, state, sr"):
        SileroVad(session=FakeSileroSession(("audio", "hidden"))).load()


def test_silero_needs_load() -> None:
    with pytest.raises(LifecycleError, match="load"):
        SileroVad().is_speech(np.zeros(FRAME_SAMPLES, np.float32))


@pytest.mark.parametrize("kwargs", [{"threshold": 0.0}, {"threshold": 1.0},
                                    {"threshold": float("nan")}, {"threshold": "0.5"},
                                    {"model_path": ""}, {"model_path": 3},
                                    {"session": object()}])
def test_silero_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SileroVad(**kwargs)


def test_silero_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendNotInstalled, match=r"harken\[silero\]") as info:
        SileroVad().load()
    assert info.value.package == "onnxruntime"


def test_silero_missing_model_says_which_packages_ship_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in ("silero_vad", "faster_whisper") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(SileroModelNotFound, match="faster-whisper") as info:
        SileroVad().load()
    assert "silero-vad" in str(info.value) and "model_path" in str(info.value)
    assert isinstance(info.value, BackendNotInstalled)


def test_silero_model_path_that_does_not_exist(tmp_path: Any) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(ConfigError, match="not a file"):
        SileroVad(model_path=str(tmp_path / "nope.onnx")).load()


# ---------------------------------------------------------------- gated (fakes)


class Scripted:
    """A detector answering from a list, recording every call."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = list(answers)
        self.judged = 0
        self.skipped: list[float] = []
        self.resets = 0
        self.loaded = False
        self.closed = 0

    def load(self) -> None:
        self.loaded = True

    def is_speech(self, frame: np.ndarray) -> bool:
        self.judged += 1
        return self.answers.pop(0)

    def skip(self, frame: np.ndarray) -> None:
        self.skipped.append(float(frame[0]))

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closed += 1


def test_gated_runs_confirm_only_where_the_gate_passes() -> None:
    gate = Scripted([True, False, True, True, False])
    confirm = Scripted([True, False, True])
    vad = GatedVad(gate, confirm)
    vad.load()
    assert gate.loaded and confirm.loaded
    frames = [np.full(FRAME_SAMPLES, i / 10, np.float32) for i in range(5)]
    assert [vad.is_speech(f) for f in frames] == [True, False, False, True, False]
    assert (vad.frames, vad.confirm_runs, confirm.judged) == (5, 3, 3)
    assert vad.confirm_share == pytest.approx(0.6)
    assert confirm.skipped == pytest.approx([0.1, 0.4])  # rejected frames still reach it
    assert confirm.resets == 0  # reset_after=0: the state is kept
    vad.reset()
    assert (vad.frames, vad.confirm_runs, gate.resets, confirm.resets) == (0, 0, 1, 1)
    vad.close()
    vad.close()
    assert gate.closed == 2 and confirm.closed == 2


def test_gated_reset_after_skipped_frames() -> None:
    gate = Scripted([False] * 7 + [True])
    confirm = Scripted([True])
    vad = GatedVad(gate, confirm, reset_after=3)
    for _ in range(8):
        vad.is_speech(np.zeros(FRAME_SAMPLES, np.float32))
    assert confirm.resets == 1  # once per run of rejected frames, not every frame
    assert vad.confirm_runs == 1


def test_gated_closes_gate_when_confirm_fails_to_load() -> None:
    gate = Scripted([])

    class Broken(Scripted):
        def load(self) -> None:
            raise BackendNotInstalled("onnxruntime", "silero", "The Silero VAD")

    with pytest.raises(BackendNotInstalled):
        GatedVad(gate, Broken([])).load()
    assert gate.closed == 1


@pytest.mark.parametrize("kwargs", [{"gate": object()}, {"confirm": 3}, {"reset_after": -1},
                                    {"reset_after": 1.5}])
def test_gated_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    args: dict[str, Any] = {"gate": EnergyVad(), "confirm": EnergyVad(), **kwargs}
    with pytest.raises(ConfigError):
        GatedVad(**args)


# ---------------------------------------------------------------- factory


def test_factory_maps_each_backend() -> None:
    energy = create_vad(VadConfig(backend="energy", energy_threshold_db=-30.0))
    assert isinstance(energy, EnergyVad) and energy.threshold_db == -30.0
    webrtc = create_vad(VadConfig(backend="webrtc", webrtc_sensitivity=1))
    assert isinstance(webrtc, WebRtcVad)
    assert (webrtc.sensitivity, webrtc.rule) == (1, "first30")
    silero = create_vad(VadConfig(backend="silero", silero_threshold=0.7))
    assert isinstance(silero, SileroVad) and silero.threshold == 0.7
    assert not silero.loaded  # the factory loads nothing
    gated = create_vad(VadConfig(webrtc_sensitivity=2, silero_threshold=0.6))
    assert isinstance(gated, GatedVad)
    assert isinstance(gated.gate, WebRtcVad) and isinstance(gated.confirm, SileroVad)
    assert (gated.gate.sensitivity, gated.gate.rule, gated.confirm.threshold) == \
        (2, "any10", 0.6)
    for vad in (energy, webrtc, silero, gated):
        assert isinstance(vad, VoiceActivityDetector)


def test_factory_config_errors() -> None:
    with pytest.raises(ConfigError, match="VadConfig"):
        create_vad({"backend": "energy"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="backend"):
        VadConfig(backend="torch")
    forged = VadConfig()
    object.__setattr__(forged, "backend", "torch")  # bypasses VadConfig's own check
    with pytest.raises(ConfigError, match="'torch'"):
        create_vad(forged)
    assert dataclasses.replace(VadConfig(), backend="energy").backend == "energy"


def test_the_backend_table_is_the_one_list_of_names() -> None:
    assert list(VAD_BACKENDS)[0] == VadConfig().backend  # the default comes first
    assert VAD_BACKENDS["webrtc+silero"].extras == ("webrtc", "silero")
    assert VAD_BACKENDS["energy"].extras == ()
    for name, row in VAD_BACKENDS.items():
        vad = create_vad(VadConfig(backend=name))  # the config accepts every name
        parts = [vad.gate, vad.confirm] if isinstance(vad, GatedVad) else [vad]
        assert any(isinstance(p, WebRtcVad) for p in parts) == row.webrtc, name
        assert any(isinstance(p, SileroVad) for p in parts) == row.silero, name
    with pytest.raises(ConfigError, match="'webrtc\\+silero', 'silero', 'webrtc', 'energy'"):
        VadConfig(backend="vosk")  # the message lists the table


def test_detectors_run_on_a_given_silero_session() -> None:
    session = FakeSileroSession()
    silero = create_vad(VadConfig(backend="silero"), silero_session=session)
    gated = create_vad(VadConfig(backend="webrtc+silero"), silero_session=session)
    silero.load()
    loud = np.full(FRAME_SAMPLES, 0.8, np.float32)
    assert silero.is_speech(loud) and len(session.inputs) == 1
    assert isinstance(gated, GatedVad)
    gated.confirm.load()
    assert gated.confirm.is_speech(loud) and len(session.inputs) == 2
    energy = create_vad(VadConfig(backend="energy"), silero_session=session)
    assert isinstance(energy, EnergyVad)  # backends without Silero ignore it


def test_server_sessions_share_one_silero_model(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    import harken.vad.silero as silero_module
    from harken.server.vads import VadFactory

    opened: list[str | None] = []
    real_open = silero_module.open_session

    def counting_open(model_path: str | None = None) -> Any:
        opened.append(model_path)
        return real_open(model_path)

    monkeypatch.setattr(silero_module, "open_session", counting_open)
    try:
        factory = VadFactory(VadConfig(backend="silero"))
        factory.load()
    except BackendNotInstalled as exc:  # no package ships the model file
        pytest.skip(str(exc))
    audio = np.concatenate([noise(-30.0, 0.5), tone(300.0, -20.0, 0.5)])
    runs = []
    for _ in range(3):
        vad = factory.create()
        assert isinstance(vad, SileroVad)
        runs.append([vad.probability(f) for f in frames_of(audio)])
        vad.close()
    assert opened == [None]  # one model load for the factory's check and three sessions
    # Each session keeps its own recurrent state on the shared model: the same audio gives
    # the same probabilities, whatever the sessions before it heard.
    assert runs[0] == runs[1] == runs[2]


def test_importing_the_vad_package_imports_no_backend() -> None:
    code = ("import sys, harken.vad as v; v.create_vad; v.GatedVad; v.SileroVad; v.WebRtcVad; "
            "print(sorted(m for m in ('onnxruntime', 'webrtcvad', 'faster_whisper', "
            "'silero_vad', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(not HAS_WEBRTC, reason="webrtcvad-wheels is not installed")
def test_webrtc_clips_samples_beyond_full_scale() -> None:
    vad = WebRtcVad(3)
    vad.load()
    loud = (1.7 * np.sign(tone(300.0, -3.0, 0.5))).astype(np.float32)  # |x| > 1, no cast warning
    assert all(isinstance(vad.is_speech(f), bool) for f in frames_of(loud))
    vad.close()
