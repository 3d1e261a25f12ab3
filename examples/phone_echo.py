"""A phone agent that repeats what the caller said, with barge-in.

    python examples/phone_echo.py                  # answer calls on 127.0.0.1:5070 until Ctrl+C
    python examples/phone_echo.py --call-yourself  # baresip calls it with harken's sample

Call it from any SIP phone (e.g. ``baresip``: ``/dial sip:agent@127.0.0.1:5070``). With
``--call-yourself`` the example dials itself with Debian's baresip, speaking the recording
shipped with harken, prints the call's turns and saves what baresip heard (``--heard``, heard.wav).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import wave

import numpy as np

from harken.cli.main import sample_path
from harken.phone import BaresipCaller, PhoneAgent
from harken.phone.caller import write_wav_int16
from harken.phone.timeline import to_8k_int16


def echo(call, text: str) -> str:
    print(f"call {call.id} caller: {text}", flush=True)
    return text


def call_yourself(agent: PhoneAgent, heard_path: str) -> None:
    with wave.open(str(sample_path())) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        rate = w.getframerate()
    first_8s = to_8k_int16(pcm[:rate * 8], rate)
    mic = np.concatenate([np.zeros(4000, np.int16), first_8s, np.zeros(8000 * 10, np.int16)])
    with tempfile.TemporaryDirectory() as tmp:
        caller = BaresipCaller(agent.uri, mic, tmp, max_seconds=40)
        caller.start()
        deadline = time.monotonic() + 40
        while not agent.finished_calls and time.monotonic() < deadline:
            time.sleep(0.2)
        caller.close()
        write_wav_int16(heard_path, caller.heard(), 8000)
    for done in agent.finished_calls:
        print(f"call {done.id} turns: {done.turns}")
        print(f"call {done.id} replies: {done.replies}")


def main() -> None:
    parser = argparse.ArgumentParser(description="an echo phone agent")
    parser.add_argument("--listen", default="127.0.0.1:5070")
    parser.add_argument("--call-yourself", action="store_true")
    parser.add_argument("--heard", default="heard.wav", help="where --call-yourself saves "
                        "what baresip heard")
    args = parser.parse_args()
    agent = PhoneAgent(echo, listen=args.listen,
                       on_call_start=lambda call: print(f"call {call.id} from "
                                                        f"{call.remote_uri}", flush=True),
                       on_barge_in=lambda call, heard: print(f"call {call.id} interrupted "
                                                             f"after {heard!r}", flush=True))
    with agent:
        print(f"answering at {agent.uri}", flush=True)
        if args.call_yourself:
            call_yourself(agent, args.heard)
        else:
            try:
                agent.wait()
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    main()
