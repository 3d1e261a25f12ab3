"""Issue #89's program with speech output: a media-port module that builds a Speaker and a
Recorder at module level, imported by a main script without a ``__main__`` guard that also
runs a multiprocessing Pool, under every start method.

The tone engine and the scripted recogniser keep it model-free. Without a guard, spawn and
forkserver pool workers re-run the script's top level while they bootstrap, harken code
included; only the Pool itself is kept to the main process (a bootstrapping process may
not start one: Python's rule for any Pool under spawn, not harken's).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import textwrap

import pytest

METHODS = [m for m in ("fork", "spawn", "forkserver")
           if m in multiprocessing.get_all_start_methods()]

_PORT = """
import numpy as np
from harken import Recorder
from harken.speak import Speaker
from harken.testing import ScriptedVad, silence


class AudioMediaPort:
    '''The user's PJSUA2-style bridge: it owns what hears and what speaks.'''

    def __init__(self):
        self.heard = []
        self.speaker = Speaker(engine="tone", sample_rate=16000, realtime=False,
                               on_audio=self.heard.append)   # module level: starts nothing
        self.recorder = Recorder(source="push", engine="scripted",
                                 vad_detector=ScriptedVad([(0.5, 1.5)]))

    def talk(self, text):
        self.heard.clear()
        with self.speaker as speaker:       # starts the engine program only now
            report = speaker.say(text, timeout=30)
        audio = np.concatenate([silence(0.5), *self.heard, silence(1.0)])
        with self.recorder as rec:
            rec.feed_audio(audio)
            heard = rec.text(timeout=30)
        return f"{report.delivered_text} | {sum(c.size for c in self.heard)} | {heard}"

PORT = AudioMediaPort()
"""

_JOBS = """
def job(i):
    from audio_media_port import AudioMediaPort
    return AudioMediaPort().talk(f"job {i} three four five.")
"""


@pytest.mark.parametrize("method", METHODS)
def test_media_port_module_with_speaker_and_recorder_under_a_pool(tmp_path, method):
    (tmp_path / "audio_media_port.py").write_text(textwrap.dedent(_PORT))
    (tmp_path / "jobs.py").write_text(textwrap.dedent(_JOBS))
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(f"""
        import multiprocessing
        import psutil
        multiprocessing.set_start_method({method!r}, force=True)
        from audio_media_port import PORT       # builds a Speaker and a Recorder
        from jobs import job

        # No `if __name__ == "__main__":` guard, on purpose.
        print("MAIN:", PORT.talk("Hello from the main script."), flush=True)
        if multiprocessing.current_process().name == "MainProcess":  # only the Pool
            with multiprocessing.get_context({method!r}).Pool(2) as pool:
                for line in pool.map(job, range(3)):
                    print("POOL:", line, flush=True)
            left = [p for p in psutil.Process().children(recursive=True)
                    if "harken" in " ".join(p.cmdline())]   # not the resource tracker
            print("LEFT:", len(left), flush=True)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=240)
    assert out.returncode == 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert "bootstrapping phase" not in out.stderr
    lines = out.stdout.splitlines()
    assert "MAIN: Hello from the main script. | 16000 | speech 1.54 s rms 0.140" in lines
    for i in range(3):
        assert f"POOL: job {i} three four five. | 16000 | speech 1.54 s rms 0.140" in lines
    assert "LEFT: 0" in lines
