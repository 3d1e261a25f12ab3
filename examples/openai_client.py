"""Use a running ``harken serve`` with the official openai package: file transcription
and the realtime transcription WebSocket.

    harken serve &                       # in another terminal
    python examples/openai_client.py [path/to/audio.wav] [http://127.0.0.1:8765]
    ("" as the path: the recording shipped with harken)
"""

from __future__ import annotations

import sys

from openai import OpenAI

from harken.cli.main import sample_path


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else str(sample_path())
    base = sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:8765"
    client = OpenAI(base_url=f"{base}/v1", api_key="unused")  # or the server's --token
    with open(path, "rb") as audio:
        result = client.audio.transcriptions.create(model="whisper-1", file=audio,
                                                    response_format="verbose_json")
    for segment in result.segments or []:
        print(f"[{segment.start:6.2f} s] {segment.text}")


if __name__ == "__main__":
    main()
