"""Speak with harken: a sentence, an LLM-style token stream, and a stop in the middle.

    python examples/speak.py [out.wav] [--engine piper|espeak|tone]

Writes the speech to a WAV file (any sink works the same: sink="device" plays it, on_audio=
gets each chunk). Without --engine: Piper if installed (pip install "harken[piper]"), else
the espeak-ng program.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

from harken.speak import Speaker, SpeechEngineHost


def tokens(text: str) -> Iterator[str]:
    """Pretend to be a language model: one word every 30 ms."""
    for i, word in enumerate(text.split(" ")):
        time.sleep(0.03)
        yield word if i == 0 else " " + word


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("output", nargs="?", default="speak.wav")
    parser.add_argument("--engine", default=None)
    args = parser.parse_args()

    # Module level would be fine too: constructing starts nothing.
    with Speaker(engine=args.engine, sink=args.output, sample_rate=16000) as speaker:
        report = speaker.say("Hello! This is harken speaking.")
        print(f"said: {report.delivered_text} ({report.delivered_s:.2f} s)")
        report = speaker.say(tokens("Each sentence is spoken as soon as it is complete, "
                                    "while the rest is still being written."))
        print(f"streamed: {report.delivered_text}")

    # Barge-in: a voice bot stops talking when the caller speaks, and learns what was heard.
    # One engine program can serve many speakers (calls, sessions): share a host.
    chunks = []
    with SpeechEngineHost(engine=args.engine) as host, \
            Speaker(host=host, on_audio=chunks.append) as speaker:   # paced in real time
        speaker.speak("Your order shipped this morning and should arrive on Thursday, "
                      "unless the weather delays the truck.")
        time.sleep(1.5)
        heard = speaker.stop()
        print(f"stopped; the caller heard: {heard.delivered_text!r}")


if __name__ == "__main__":
    main()
