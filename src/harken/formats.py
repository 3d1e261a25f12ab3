"""Writers for transcripts: plain text, JSON, SRT and WebVTT (pure functions).

Shared by ``harken transcribe`` (:mod:`harken.cli.main`) and the server's OpenAI-compatible
endpoint (:mod:`harken.server.openai_api`), so neither imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .events import FinalTranscript

__all__ = ["FORMATS", "render"]

FORMATS = ("text", "json", "srt", "vtt")


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(finals: Sequence[FinalTranscript], fmt: str) -> str:
    """Render finals in ``fmt`` ("text", "json", "srt" or "vtt")."""
    cues = [f for f in finals if f.text]
    if fmt == "text":
        return "".join(f"{f.text}\n" for f in cues)
    if fmt == "json":
        return json.dumps([f.to_dict() for f in finals], indent=2, ensure_ascii=False) + "\n"
    if fmt == "srt":
        return "".join(f"{i}\n{_stamp(f.start, ',')} --> {_stamp(f.end, ',')}\n{f.text}\n\n"
                       for i, f in enumerate(cues, 1))
    if fmt == "vtt":
        return "WEBVTT\n\n" + "".join(
            f"{_stamp(f.start, '.')} --> {_stamp(f.end, '.')}\n{f.text}\n\n" for f in cues)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
