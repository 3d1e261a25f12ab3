"""The Smart Turn wrapper without its model: features, padding, lookup and lifecycle."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from harken.errors import BackendNotInstalled, LifecycleError
from harken.turn.features import WINDOW_SAMPLES, log_mel
from harken.turn.smart_turn import SmartTurnModel, SmartTurnNotFound, find_smart_turn_model

RATE = 16000


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise shaped by a slow envelope, with a few harmonics: not silence, not a pure tone."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    x = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 540, 1200), 1))
    return ((0.2 * x + 0.05 * rng.standard_normal(len(t))) * env).astype(np.float32)


def pipecat_features():
    """pipecat's own numpy Whisper features, loaded from its file (pipecat's __init__
    imports packages installed --no-deps leaves out)."""
    try:
        spec = importlib.util.find_spec("pipecat")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pipecat-ai is not installed (pip install --no-deps pipecat-ai==1.14.0)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "audio", "turn",
                        "smart_turn", "_whisper_features.py")
    module_spec = importlib.util.spec_from_file_location("_pipecat_whisper_features", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.compute_whisper_log_mel_features


@pytest.mark.parametrize("seconds", [1.0, 3.5, 8.0])
def test_features_match_pipecats_own(seconds: float) -> None:
    reference = pipecat_features()
    audio = np.zeros(WINDOW_SAMPLES, np.float32)
    audio[WINDOW_SAMPLES - int(seconds * RATE):] = speechlike(seconds)
    ours = log_mel(audio)
    theirs = reference(audio, do_normalize=True)
    assert ours.shape == theirs.shape == (80, 800)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_features_need_exactly_eight_seconds() -> None:
    with pytest.raises(ValueError, match="128000"):
        log_mel(np.zeros(16000, np.float32))


class RecordingSession:
    """Stands in for the onnxruntime session: keeps the features it was given."""

    def __init__(self, p: float) -> None:
        self.p = p
        self.inputs: list[np.ndarray] = []

    def run(self, outputs, feeds):
        self.inputs.append(feeds["input_features"])
        return [np.array([[self.p]], np.float32)]


def test_short_audio_is_left_padded_and_long_audio_keeps_its_last_eight_seconds() -> None:
    session = RecordingSession(0.8)
    model = SmartTurnModel(session=session)
    model.load()
    short = speechlike(2.0)
    assert model.predict(short) == pytest.approx(0.8)
    left = np.concatenate([np.zeros(WINDOW_SAMPLES - len(short), np.float32), short])
    right = np.concatenate([short, np.zeros(WINDOW_SAMPLES - len(short), np.float32)])
    np.testing.assert_array_equal(session.inputs[0][0], log_mel(left))
    assert not np.allclose(session.inputs[0][0], log_mel(right))
    long = speechlike(11.0, seed=1)
    model.predict(long)
    np.testing.assert_array_equal(session.inputs[1][0], log_mel(long[-WINDOW_SAMPLES:]))
    assert session.inputs[1].shape == (1, 80, 800)


def test_predict_before_load_or_after_close_is_refused() -> None:
    model = SmartTurnModel(session=RecordingSession(0.5))
    with pytest.raises(LifecycleError):
        model.predict(speechlike(1.0))
    model.load()
    model.close()
    model.close()
    with pytest.raises(LifecycleError):
        model.predict(speechlike(1.0))


def test_the_model_file_is_found_without_importing_pipecat() -> None:
    code = ("import sys; from harken.turn.smart_turn import find_smart_turn_model as f; "
            "p = f(); assert p.endswith('smart-turn-v3.2-cpu.onnx'), p; "
            "assert 'pipecat' not in sys.modules; print('ok')")
    try:
        find_smart_turn_model()
    except SmartTurnNotFound:
        pytest.skip("pipecat-ai is not installed")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_a_missing_wheel_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(BackendNotInstalled, match="--no-deps pipecat-ai==1.14.0"):
        find_smart_turn_model()


def test_a_recorder_with_smart_turns_and_no_model_file_fails_to_start(monkeypatch) -> None:
    import harken.turn.smart_turn as smart_turn
    from harken import Recorder, SmartTurnNotFound

    monkeypatch.setattr(smart_turn, "find_packaged_file", lambda candidates: (None, []))
    rec = Recorder(source="push", engine="scripted", vad="energy", turn_detection="smart")
    with pytest.raises(SmartTurnNotFound, match="pipecat-ai==1.14.0"):
        rec.start()
    rec.close()
