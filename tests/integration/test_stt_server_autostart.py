"""RealtimeSTT's own client with ``autostart_server=True`` starts ``harken stt-server``.

The client runs ``stt-server`` from PATH; the test puts the shim the README shows (a
``stt-server`` that runs ``harken stt-server``) first on PATH, lets the client start it on
free ports, and streams real speech (espeak) to the real tiny.en model.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from server_helpers import silence
from test_server_rtstt import Recorded, client_class, feed  # noqa: F401 - fixture

from harken.testing import word_errors


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.model
# RealtimeSTT's client drops its Popen handle of the server it starts; the test reaps the
# server itself, so the handle's __del__ warns that the process was still running.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_client_autostarts_harken_stt_server(client_class: Any, espeak: Any,  # noqa: F811
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pidfile = tmp_path / "server.pid"
    shim = tmp_path / "stt-server"
    shim.write_text(f'#!/bin/sh\necho $$ > {pidfile}\nexec {sys.executable} -m harken '
                    'stt-server "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    control, data = _free_port(), _free_port()
    sentence = "Please send the report to the whole team before Friday."
    audio = np.concatenate([silence(0.5), espeak(sentence), silence(1.5)])
    recorded = Recorded()
    client = None
    try:
        client = client_class(
            model="tiny.en", language="en", use_microphone=False, spinner=False,
            autostart_server=True, control_url=f"ws://127.0.0.1:{control}",
            data_url=f"ws://127.0.0.1:{data}",
            on_realtime_transcription_update=recorded.add("realtime"))
        assert pidfile.exists(), "the client did not run the stt-server on PATH"
        client.set_parameter("post_speech_silence_duration", 0.6)
        assert client.get_parameter("post_speech_silence_duration") == 0.6
        assert client.get_parameter("is_recording") is False
        feed(client, audio, 16000, pace=0.5)
        assert client.final_text_ready.wait(60), recorded.events
        text = client.final_text
        errors, n = word_errors(sentence, text)
        assert errors / n <= 0.2, (sentence, text)
        client.call_method("stop")  # answered like stt-server (nothing open: a no-op)
    finally:
        if client is not None:
            client.shutdown()
        if pidfile.exists():
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
