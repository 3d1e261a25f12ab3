"""Pause pieces on real speech: the word after the pause survives the cut (real VAD, tiny.en).

austen_0870 says "... to consider how much there might be ..." with a 96 ms pause after
"how"; the early final is cut in it, and with ``pause_pieces_ms`` kept as a piece when
"much" begins. The "m" of "much" starts before the VAD hears speech, inside the piece's
tail: a rest that started at the piece's end began in the middle of "much", and tiny.en
dropped the word from the rest's passes ("consider how. there might be").
"""

from __future__ import annotations

import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harken.config import EngineConfig, VadConfig
from harken.core import SpeechPipeline
from harken.engine.base import EngineOutput, TranscribeRequest
from harken.engine.faster_whisper import FasterWhisperEngine
from harken.events import FinalTranscript
from harken.server.config import OPENAI_REALTIME
from harken.testing import drive, normalize_text, of_type, silence
from harken.vad import create_vad

pytestmark = pytest.mark.model

DATA = Path(__file__).resolve().parents[1] / "data"


def test_the_word_after_a_kept_pause_is_in_every_pass_over_the_rest():
    with wave.open(str(DATA / "austen_0870.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    audio = np.concatenate([silence(1.0), pcm.astype(np.float32) / 32768, silence(1.5)])
    engine = FasterWhisperEngine(EngineConfig())
    engine.load()
    vad = create_vad(VadConfig())
    vad.load()
    heard: list[tuple[TranscribeRequest, str]] = []

    def answer(request: TranscribeRequest) -> EngineOutput:
        output = engine.transcribe(request.audio, kind=request.kind, hints=request.hints)
        heard.append((request, output.text))
        return output

    try:
        # The OpenAI Realtime endpoint's settings (stable prefix, beam 5 partials), where a
        # pass that dropped "much" twice made it stable, and so gone from the final too.
        pipe = SpeechPipeline(vad, VadConfig(), replace(OPENAI_REALTIME, pause_pieces_ms=1000))
        finals = of_type(drive(pipe, audio, answer=answer, flush=True), FinalTranscript)
    finally:
        vad.close()
        engine.close()
    assert [f.split for f in finals] == [True, False], [f.text for f in finals]
    piece, rest = finals
    assert normalize_text(piece.text)[-2:] == ["consider", "how"]
    # Every pass over the rest (partials as they grow, then its final) hears "much" first.
    starts = sorted({request.start_sample for request, _ in heard})
    assert len(starts) == 2  # the piece's passes, and the rest's
    rest_passes = [text for request, text in heard if request.start_sample == starts[1]
                   and text.strip()]
    assert rest_passes and all(normalize_text(t)[0] == "much" for t in rest_passes), rest_passes
    words = normalize_text(f"{piece.text} {rest.text}")
    assert "consider how much there might be" in " ".join(words), words
