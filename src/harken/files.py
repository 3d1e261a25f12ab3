"""Transcribe an audio file through the streaming pipeline, as fast as the engine allows.

:func:`transcribe_file` runs a :class:`~harken.recorder.Recorder` over a file source and
collects its finals; it blocks the calling thread (the recorder's own threads do the work).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import RecorderConfig
from .events import FinalTranscript
from .recorder import Callback, Recorder

__all__ = ["transcribe_file"]

_PROGRESS_PERIOD_S = 0.05


def transcribe_file(path: str | Path, *, on_final: Callback | None = None,
                    on_progress: Callable[[float], None] | None = None,
                    config: RecorderConfig | None = None,
                    **settings: Any) -> list[FinalTranscript]:
    """Transcribe an audio file through the streaming pipeline; return its finals in order.

    The file is read as fast as the engine allows (not in real time). ``on_progress`` is
    called with the seconds of audio processed so far, about ten times a second.
    ``settings`` are the keyword shortcuts :class:`~harken.recorder.Recorder` takes
    (:meth:`~harken.config.RecorderConfig.with_settings`), applied to ``config``. Finals
    ask for the engine's most careful decode (``final_quality="standard"``, faster-whisper's
    own 30 s pass) unless ``final_quality`` is given here or in ``config``: nobody waits on
    a file's finals, so the standard pass is worth its cost.

    Raises:
        EngineError: an utterance could not be transcribed.
    """
    from .sources.file import FileSource

    finals: list[FinalTranscript] = []
    config = config or RecorderConfig()
    settings.setdefault("partials", False)  # nobody watches partials of a file
    if config.realtime.final_quality is None:
        settings.setdefault("final_quality", "standard")
    config = config.with_settings(**settings)
    with Recorder(config, source=FileSource(str(path)), on_final=on_final) as rec:
        while True:
            done = rec.ended and rec.wait_idle(0.1)
            while True:  # take finals as they come, so an error surfaces at once
                try:
                    finals.append(rec.next_final(timeout=0))
                except TimeoutError:
                    break
            if done:
                break
            if on_progress is not None:
                on_progress(rec.position)
            time.sleep(_PROGRESS_PERIOD_S)
    finals.sort(key=lambda f: (f.start, f.utterance_id))
    return finals
