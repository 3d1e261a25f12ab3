"""Importing harken must do nothing: no threads, processes, handlers or heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ["faster_whisper", "ctranslate2", "onnxruntime", "sounddevice", "soundfile", "torch",
         "webrtcvad", "websockets", "soxr"]


def test_import_starts_nothing_and_imports_no_heavy_package(tmp_path):
    code = textwrap.dedent(f"""
        import json, logging, multiprocessing, os, sys, threading
        before = set(os.listdir("."))
        import harken
        from harken import Recorder, AsyncRecorder, RecorderConfig, FinalTranscript
        import harken.compat, harken.cli.main, harken.testing
        Recorder(source="push")          # constructing starts nothing either
        harken.compat.AudioToTextRecorder(use_microphone=False)
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


def test_every_public_name_resolves():
    import harken

    for name in harken.__all__:
        assert getattr(harken, name) is not None
