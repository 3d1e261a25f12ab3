"""Stream audio through RealtimeSTT and record when its partials and finals arrive.

Runs INSIDE RealtimeSTT's own venv (made by ``benchmarks/realtimestt/setup.sh``), as a
separate program started by ``benchmarks/latency.py``; it imports nothing from harken. With
``"recorder": "harken.compat"`` in the job it runs in harken's environment instead and the
only change is the import (``from harken.compat import AudioToTextRecorder``); partials are
then stamped from the two text callbacks (the stabilized text as the stable prefix), since
the structured stabilization callback is RealtimeSTT's own.

It reads a JSON job, builds one stream from the job's WAV files (16 kHz mono int16, with
``pad_s`` seconds of silence between them), feeds it to ``AudioToTextRecorder.feed_audio()``
in ``chunk_ms`` chunks of int16 bytes at real-time pace (on the main thread), and runs
RealtimeSTT's blocking ``text()`` loop on a second thread. Every callback is stamped with
``t`` (seconds on this process's monotonic clock since the first chunk was fed) and ``fed``
(seconds of audio fed by then), and everything is written to the job's ``out`` file as JSON.

Job (JSON)::

    {"files": ["/tmp/x/stream.wav"], "pad_s": 0.0, "chunk_ms": 20, "pace": 1.0,
     "model": "/path/to/faster-whisper-tiny.en", "expected_finals": 8, "tail_s": 8.0,
     "settings": {"post_speech_silence_duration": 0.5}, "out": "/tmp/x/rtstt.json"}

``pace`` is the speed relative to real time (1.0 = real time). ``settings`` are extra
AudioToTextRecorder keyword arguments applied on top of the ones below.

Usage: <rtstt-venv>/bin/python run_rtstt.py job.json
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
import wave
from typing import Any

import numpy as np

SAMPLE_RATE = 16000


def read_stream(files: list[str], pad_s: float) -> np.ndarray:
    """Concatenate 16 kHz mono int16 WAV files with ``pad_s`` seconds of zeros between them."""
    parts: list[np.ndarray] = []
    pad = np.zeros(int(round(pad_s * SAMPLE_RATE)), dtype=np.int16)
    for i, path in enumerate(files):
        with wave.open(path) as w:
            if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise SystemExit(f"{path}: need 16 kHz mono 16-bit PCM")
            parts.append(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16))
        if pad.size and i < len(files) - 1:
            parts.append(pad)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def main() -> int:
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    audio = read_stream(job["files"], float(job.get("pad_s", 0.0)))
    chunk = int(SAMPLE_RATE * int(job.get("chunk_ms", 20)) / 1000)
    pace = float(job.get("pace", 1.0))
    events: list[dict[str, Any]] = []
    errors: list[str] = []
    lock = threading.Lock()
    clock = {"t0": 0.0, "fed": 0}
    started = threading.Event()

    def stamp(kind: str, **fields: Any) -> None:
        now = time.monotonic()
        with lock:
            t = now - clock["t0"] if started.is_set() else -1.0
            events.append({"kind": kind, "t": t, "fed": clock["fed"] / SAMPLE_RATE, **fields})

    def on_structured(event: Any) -> None:
        stamp("partial", stable=str(getattr(event, "stable_text", "")),
              unstable=str(getattr(event, "unstable_text", "")),
              display=str(getattr(event, "display_text", "")))

    import importlib.metadata

    compat = job.get("recorder") == "harken.compat"
    if compat:  # the same program on harken, as a migrating user runs it
        from harken.compat import AudioToTextRecorder
    else:
        from RealtimeSTT import AudioToTextRecorder  # type: ignore[no-redef]
    stabilized = [""]

    def on_stabilized(text: str) -> None:
        stabilized[0] = str(text)
        stamp("stabilized", text=str(text))

    def on_update(text: str) -> None:
        text = str(text)
        stamp("update", text=text)
        if compat:  # no structured event: the stabilized text is the stable prefix
            stable = stabilized[0] if text.startswith(stabilized[0]) else ""
            stamp("partial", stable=stable, unstable=text[len(stable):].strip())

    settings: dict[str, Any] = {
        # Needed here: no microphone, no GPU, no model download, no log file in the cwd.
        "model": job["model"],
        "realtime_model_type": job["model"],  # its default "tiny" would be downloaded
        "device": "cpu",
        "compute_type": job.get("compute_type", "int8"),  # the precision harken uses
        "use_microphone": False,
        "spinner": False,
        "no_log_file": True,
        "level": logging.WARNING,
        "enable_realtime_transcription": True,
        "on_realtime_transcription_update": on_update,
        "on_realtime_transcription_stabilized": on_stabilized,
        "on_recording_start": lambda *a: stamp("recording_start"),
        "on_recording_stop": lambda *a: stamp("recording_stop"),
        "on_transcription_start": lambda *a: stamp("transcription_start"),
    }
    if not compat:
        settings["on_realtime_text_stabilization_update"] = on_structured
    settings.update(job.get("settings", {}))
    t_load = time.monotonic()
    recorder = AudioToTextRecorder(**settings)
    load_s = time.monotonic() - t_load
    stop = threading.Event()
    finals = [0]

    def text_loop() -> None:
        while not stop.is_set():
            try:
                text = recorder.text()
            except Exception as exc:  # shutdown or a real failure: keep it for the report
                if not stop.is_set():
                    errors.append("text(): " + "".join(traceback.format_exception_only(exc)))
                return
            if stop.is_set():
                return
            stamp("final", text=str(text))
            finals[0] += 1

    reader = threading.Thread(target=text_loop, name="rtstt-text", daemon=True)
    reader.start()
    time.sleep(0.5)  # let text() start listening before audio arrives
    with lock:
        clock["t0"] = time.monotonic()
        started.set()
    t0 = clock["t0"]
    for i in range(0, len(audio), chunk):
        piece = audio[i:i + chunk]
        due = t0 + (i + len(piece)) / SAMPLE_RATE / pace
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        recorder.feed_audio(piece.tobytes(), SAMPLE_RATE)
        with lock:
            clock["fed"] = i + len(piece)
    fed_end = time.monotonic()
    expected = int(job.get("expected_finals", 0))
    tail_s = float(job.get("tail_s", 8.0))
    while time.monotonic() - fed_end < tail_s and (expected <= 0 or finals[0] < expected):
        time.sleep(0.05)
    stop.set()
    shutdown_s = time.monotonic()
    try:
        recorder.shutdown()
    except Exception as exc:
        errors.append("shutdown(): " + "".join(traceback.format_exception_only(exc)))
    shutdown_s = time.monotonic() - shutdown_s
    reader.join(2.0)
    defaults = {k: v for k, v in settings.items() if not callable(v)}
    result = {
        "system": "harken.compat" if compat else "RealtimeSTT",
        "version": importlib.metadata.version("harken" if compat else "realtimestt"),
        "torch": "not used" if compat else importlib.metadata.version("torch"),
        "settings": defaults,
        "load_s": load_s,
        "shutdown_s": shutdown_s,
        "audio_s": len(audio) / SAMPLE_RATE,
        "events": events,
        "errors": errors,
    }
    with open(job["out"], "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":  # RealtimeSTT starts processes with spawn: this guard is required
    raise SystemExit(main())
