"""The seed program's shape (RealtimeSTT issue #89) as a phone agent, under every start method.

main.py (no main guard) -> sip_client.py -> account.py -> audio_media_port.py, which builds
the agent, a recorder and the voice at module level; the reply hook counts words in a
multiprocessing Pool (whose children re-import main.py under spawn and forkserver). A
baresip call must be answered and replied to, and nothing may be left running.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest
from phone_helpers import call, free_udp_port, need_phone, script, wait_call_over, wait_for

pytestmark = pytest.mark.model

METHODS = [m for m in ("fork", "spawn", "forkserver")
           if m in multiprocessing.get_all_start_methods()]

FILES = {
    "main.py": """
        import multiprocessing
        import sys

        multiprocessing.set_start_method(sys.argv[1], force=True)
        import sip_client

        # No `if __name__ == "__main__":` guard, on purpose.
        sip_client.main()
    """,
    "sip_client.py": """
        from account import run_account

        def main():
            run_account()
    """,
    "account.py": """
        import multiprocessing
        import time

        import audio_media_port

        def run_account():
            agent = audio_media_port.AGENT
            agent.start()
            if agent.skipped:  # a pool child importing main.py: it answers no calls
                return
            print("READY", flush=True)
            try:
                deadline = time.monotonic() + 60
                while not agent.finished_calls and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(0.5)
                for done in agent.finished_calls:
                    print("TURNS:", done.turns, flush=True)
                    print("REPLIES:", done.replies, flush=True)
                print("ERRORS:", agent.errors, flush=True)
            finally:
                agent.close()
            print("CHILDREN:", len(multiprocessing.active_children()), flush=True)
    """,
    "audio_media_port.py": """
        import os

        from harken import Recorder
        from harken.phone import PhoneAgent, SpeakerVoice

        import words

        # Built at module level, as in the seed: constructors only store settings.
        VOICE = SpeakerVoice()  # the speaker: Piper in its own program, from start()
        RECORDER = Recorder(source="push")

        def on_turn(call, text):
            return f"You said {words.count(text)} words."

        AGENT = PhoneAgent(on_turn, listen=os.environ["AGENT_LISTEN"], voice=VOICE,
                           rtp_port=int(os.environ["AGENT_RTP"]))
    """,
    "words.py": """
        import multiprocessing

        def _count(text):
            return len(text.split())

        def count(text):
            with multiprocessing.get_context().Pool(1) as pool:
                return pool.apply(_count, (text,))
    """,
}


@pytest.mark.parametrize("method", METHODS)
def test_seed_program_answers_a_call_under(method, tmp_path):
    need_phone()
    for name, body in FILES.items():
        (tmp_path / name).write_text(textwrap.dedent(body))
    port = free_udp_port()
    env = dict(os.environ, AGENT_LISTEN=f"127.0.0.1:{port}",
               AGENT_RTP=str(30000 + port % 1000 * 16), PYTHONUNBUFFERED="1")
    with subprocess.Popen([sys.executable, "main.py", method], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            wait_for(lambda: proc.poll() is not None or "READY" in proc.stdout.readline(),
                     90, "the agent to listen")
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            caller = call(f"sip:agent@127.0.0.1:{port}",
                          script(0.5, "goforward", 6.0)[0], tmp_path / "caller")
            wait_call_over(caller, 40)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    assert "bootstrapping phase" not in err
    if method != "fork":  # the pool's child re-imported main.py, and its start() did nothing
        assert "PhoneAgent.start() ignored" in err, err
    assert "TURNS: ['Go forward" in out, out + err
    assert "REPLIES: ['You said 4 words.']" in out, out + err
    assert "ERRORS: []" in out and "CHILDREN: 0" in out, out + err
