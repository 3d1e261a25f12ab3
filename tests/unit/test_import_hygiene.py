"""Importing harken must do nothing: no threads, processes, handlers or heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ["faster_whisper", "ctranslate2", "onnxruntime", "sounddevice", "soundfile", "torch",
         "webrtcvad", "websockets", "soxr", "piper", "pjsua2", "aiohttp"]


def test_import_starts_nothing_and_imports_no_heavy_package(tmp_path):
    code = textwrap.dedent(f"""
        import json, logging, multiprocessing, os, sys, threading
        before = set(os.listdir("."))
        import harken
        from harken import Recorder, AsyncRecorder, RecorderConfig, FinalTranscript
        import harken.compat, harken.cli.main, harken.testing
        Recorder(source="push")          # constructing starts nothing either
        harken.compat.AudioToTextRecorder(use_microphone=False)
        import harken.speak, harken.speak.aio, harken.cli.say
        from harken.speak import AsyncSpeaker, Speaker, SpeechEngineHost
        Speaker(sink="device")                    # the default voice, the sound card
        Speaker(engine="tone", sink="out.wav")    # no file is created before start()
        AsyncSpeaker(engine="espeak")
        SpeechEngineHost(engine="tone")
        import harken.phone
        harken.phone.PhoneAgent(echo=True, voice=harken.phone.SpeakerVoice())
        print(json.dumps({{
            "threads": threading.active_count(),
            "handlers": len(logging.getLogger().handlers),
            "harken_handlers": len(logging.getLogger("harken").handlers),
            "start_method": multiprocessing.get_start_method(allow_none=True),
            "children": len(multiprocessing.active_children()),
            "heavy": [m for m in {HEAVY!r} if m in sys.modules],
            "new_files": sorted(set(os.listdir(".")) - before),
        }}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result == {"threads": 1, "handlers": 0, "harken_handlers": 0, "start_method": None,
                      "children": 0, "heavy": [], "new_files": []}


PUBLIC = [
    "AsyncRecorder", "AudioFormatError", "AudioSourceError", "BackendNotInstalled", "ConfigError",
    "CudaUnavailable", "EngineConfig", "EngineError", "EngineUnavailable", "ErrorEvent", "Event",
    "FinalTranscript",
    "HarkenError", "LifecycleError", "ModelFileNotFound", "PartialTranscript", "PauseEnded",
    "PauseStarted", "PhoneError",
    "ProtocolError", "RealtimeConfig", "Recorder", "RecorderConfig", "RecorderState",
    "RecordingStarted", "RecordingStopped", "ServerBusy", "SileroModelNotFound",
    "SmartTurnNotFound", "SpeechEnded", "SpeechStarted", "StateChanged", "TranscriptionStarted",
    "VadConfig", "WakeConfig", "WakeWordDetected", "WakeWordTimeout", "WakeWordWaiting", "Word",
    "WorkerCrashed", "WorkerError", "WorkerStartTimeout", "__version__", "transcribe_file",
]
"""harken's public names, pinned: adding or dropping one is a deliberate change here."""


def test_public_names_are_pinned_and_each_resolves_to_its_own_module():
    import harken
    import harken.errors

    assert sorted(harken.__all__) == sorted(PUBLIC)
    assert set(PUBLIC) <= set(dir(harken))  # tab completion shows them before first use
    for name in PUBLIC:
        value = getattr(harken, name)  # raises AttributeError if the lazy table is wrong
        if name != "__version__":
            assert value.__name__ == name, f"harken.{name} is {value!r}"
            assert value.__module__.startswith("harken."), f"harken.{name} is {value!r}"
    # Every error of the errors.py tree is public, and every public error is from that tree.
    errors = {n for n in PUBLIC if isinstance(getattr(harken, n), type)
              and issubclass(getattr(harken, n), BaseException)}
    assert errors == set(harken.errors.__all__)
    assert all(issubclass(getattr(harken, n), harken.HarkenError) for n in errors)


def test_the_config_is_light():
    """Settings can be built and validated (VAD names, wake words) without numpy or any
    backend module: the config stands on the ground floor."""
    code = textwrap.dedent("""
        import sys
        from harken.config import RecorderConfig, VadConfig, WakeConfig
        RecorderConfig(vad=VadConfig(backend="silero"),
                       wake=WakeConfig(words="jarvis", backend="porcupine"))
        print(sorted(m for m in sys.modules if m == "numpy" or m.startswith("harken.")))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.replace("'", '"')) == [
        "harken._lazy", "harken.config", "harken.errors", "harken.units", "harken.vad",
        "harken.vad.backends", "harken.vad.base", "harken.wake", "harken.wake.names"]
