"""Print what the microphone hears: each utterance as soon as the speaker pauses.

    python examples/microphone.py          # Ctrl+C to stop
"""

from __future__ import annotations

from harken import Recorder


def main() -> None:
    with Recorder(on_speech_start=lambda: print("(listening...)")) as rec:
        try:
            while True:
                print(rec.text())
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
