"""FinalPreview: an early final's text as soon as the engine answers it (preemptive replies)."""

from __future__ import annotations

import numpy as np

from harken.config import RealtimeConfig, VadConfig
from harken.core import SpeechPipeline
from harken.engine.base import EngineOutput, TranscribeRequest
from harken.events import FinalPreview, FinalTranscript
from harken.testing import ScriptedVad, drive, of_type, silence, tone


def pipeline(intervals, preview: bool = True) -> SpeechPipeline:
    return SpeechPipeline(ScriptedVad(intervals), VadConfig(backend="energy"),
                          RealtimeConfig(partials=False, early_final=True,
                                         preview_finals=preview))


def test_the_preview_comes_with_the_early_answer_and_the_final_confirms_it():
    pipe = pipeline([(0.5, 1.5)])
    out = drive(pipe, np.concatenate([silence(0.5), tone(1.0), silence(0.3)]))
    (request,) = of_type(out, TranscribeRequest)
    answer = pipe.on_result(request, EngineOutput("see you soon"))
    assert answer == [FinalPreview(request.utterance_id, "see you soon")]
    finals = of_type(drive(pipe, silence(0.4)), FinalTranscript)
    assert [(f.utterance_id, f.text) for f in finals] == [(request.utterance_id,
                                                           "see you soon")]


def test_no_preview_unless_asked_and_none_for_a_failed_pass():
    pipe = pipeline([(0.5, 1.5)], preview=False)
    (request,) = of_type(drive(pipe, np.concatenate([silence(0.5), tone(1.0),
                                                     silence(0.3)])), TranscribeRequest)
    assert pipe.on_result(request, EngineOutput("hi")) == []
    pipe = pipeline([(0.5, 1.5)])
    (request,) = of_type(drive(pipe, np.concatenate([silence(0.5), tone(1.0),
                                                     silence(0.3)])), TranscribeRequest)
    assert pipe.on_failed(request, RuntimeError("engine down")) == []


def test_speech_resuming_leaves_the_preview_without_its_final():
    pipe = pipeline([(0.5, 1.5), (1.8, 2.8)])
    out = drive(pipe, np.concatenate([silence(0.5), tone(1.0), silence(0.3)]))
    (first,) = of_type(out, TranscribeRequest)
    assert of_type(pipe.on_result(first, EngineOutput("I would")), FinalPreview)
    second = of_type(drive(pipe, np.concatenate([tone(1.0), silence(1.0)])),
                     TranscribeRequest)
    out = pipe.on_result(second[-1], EngineOutput("I would like tea"))
    assert [f.text for f in of_type(out, FinalTranscript)] == ["I would like tea"]
    assert not of_type(out, FinalPreview)  # the confirmed final is not previewed again
