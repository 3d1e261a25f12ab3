"""The failure harken exists to remove: scripts without a main guard under spawn.

Each test writes a user script to a temporary folder and runs it as a fresh interpreter,
exactly as a user would, under every multiprocessing start method.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

METHODS = [m for m in ("fork", "spawn", "forkserver")
           if m in multiprocessing.get_all_start_methods()]

# Two tone bursts with a scripted VAD and the scripted engine: no model needed.
_RECORDER = """
import numpy as np
from harken import Recorder
from harken.testing import ScriptedVad, silence, tone

AUDIO = np.concatenate([silence(0.5), tone(1.0), silence(1.0)])

def make_recorder():
    return Recorder(source="push", engine="scripted",
                    vad_detector=ScriptedVad([(0.5, 1.5)]))
"""


def run_script(tmp_path, name: str, body: str, timeout: float = 90) -> str:
    (tmp_path / "common.py").write_text(textwrap.dedent(_RECORDER))
    script = tmp_path / name
    script.write_text(textwrap.dedent(body))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=timeout)
    assert out.returncode == 0, f"stdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    assert "bootstrapping phase" not in out.stderr
    return out.stdout


@pytest.mark.parametrize("method", METHODS)
def test_module_level_recorder_without_main_guard(tmp_path, method):
    out = run_script(tmp_path, "user_script.py", f"""
        import multiprocessing
        multiprocessing.set_start_method({method!r})
        from common import AUDIO, make_recorder

        # No `if __name__ == "__main__":` guard, on purpose.
        rec = make_recorder()
        rec.start()
        rec.feed_audio(AUDIO)
        print("TEXT:", rec.text(timeout=30))
        rec.close()
        print("CHILDREN:", len(multiprocessing.active_children()))
    """)
    assert "TEXT: speech 1." in out
    assert "CHILDREN: 0" in out


@pytest.mark.parametrize("method", METHODS)
def test_wrapped_recorder_imported_by_a_users_multiprocessing_child(tmp_path, method):
    # The RealtimeSTT + TTS "media port bridge" pattern: a module that builds its recorder
    # wrapper at import time, imported again by the user's own worker process.
    (tmp_path / "bridge.py").write_text(textwrap.dedent("""
        from common import AUDIO, make_recorder

        class MediaPortBridge:
            def __init__(self):
                self.recorder = make_recorder()   # module level: must start nothing

            def transcribe_call(self):
                with self.recorder as rec:
                    rec.feed_audio(AUDIO)
                    return rec.text(timeout=30)

        BRIDGE = MediaPortBridge()
    """))
    out = run_script(tmp_path, "app.py", f"""
        import multiprocessing
        import bridge   # imported in the parent too, before any process starts

        def worker(q):
            from bridge import MediaPortBridge
            q.put(MediaPortBridge().transcribe_call())

        if __name__ == "__main__":
            ctx = multiprocessing.get_context({method!r})
            q = ctx.Queue()
            p = ctx.Process(target=worker, args=(q,))
            p.start()
            print("CHILD:", q.get(timeout=60))
            p.join(30)
            print("EXIT:", p.exitcode)
            print("PARENT:", bridge.BRIDGE.transcribe_call())
    """)
    assert "CHILD: speech 1." in out
    assert "EXIT: 0" in out
    assert "PARENT: speech 1." in out


def test_recorder_from_python_dash_c(tmp_path):
    # Jupyter/REPL-style execution: there is no __main__ file to re-import at all.
    (tmp_path / "common.py").write_text(textwrap.dedent(_RECORDER))
    code = ("import multiprocessing; multiprocessing.set_start_method('spawn');"
            "from common import AUDIO, make_recorder;"
            "rec = make_recorder().start(); rec.feed_audio(AUDIO);"
            "print(rec.text(timeout=30)); rec.close()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=90)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("speech 1.")


@pytest.mark.parametrize("method", METHODS)
def test_recorders_inside_a_users_multiprocessing_pool(tmp_path, method):
    # Each pool worker (a process the user's own code started) builds and runs a recorder.
    out = run_script(tmp_path, "pool_app.py", f"""
        import multiprocessing

        def job(i):
            from common import AUDIO, make_recorder
            with make_recorder() as rec:
                rec.feed_audio(AUDIO)
                return rec.text(timeout=30)

        if __name__ == "__main__":
            with multiprocessing.get_context({method!r}).Pool(2) as pool:
                for text in pool.map(job, range(3)):
                    print("POOL:", text)
    """, timeout=120)
    assert out.count("POOL: speech 1.") == 3


@pytest.mark.parametrize("method", METHODS)
def test_recorder_and_server_suites_under_each_start_method(tmp_path, method):
    """The recorder's and the server's integration tests pass whatever start method the
    user's program set."""
    plugin = tmp_path / "start_method_plugin.py"
    plugin.write_text(textwrap.dedent(f"""
        import multiprocessing

        def pytest_configure(config):
            multiprocessing.set_start_method({method!r}, force=True)
    """))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    here = Path(__file__).parent
    tests = [str(here / "test_recorder.py"), str(here / "test_server.py")]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p",
                          "start_method_plugin", "-p", "no:cacheprovider", *tests],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout
