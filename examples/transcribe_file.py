"""Transcribe an audio file (default: the recording shipped with harken) and print each
utterance with its start time.

    python examples/transcribe_file.py [path/to/audio.wav]
"""

from __future__ import annotations

import sys

from harken import transcribe_file
from harken.cli.main import sample_path


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else str(sample_path())
    for final in transcribe_file(path):
        print(f"[{final.start:6.2f} s] {final.text}")


if __name__ == "__main__":
    main()
