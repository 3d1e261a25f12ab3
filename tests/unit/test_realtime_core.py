"""Live partials, the stabiliser, early finals and ordered finals in the pure core."""

from __future__ import annotations

import numpy as np

from harken.config import RealtimeConfig, VadConfig
from harken.core import SpeechPipeline
from harken.core.pipeline import CancelRequest, ConfirmRequest, FinalFailed
from harken.core.stabilizer import Stabilizer
from harken.engine.base import DecodeHints, EngineOutput, TranscribeRequest
from harken.errors import EngineError
from harken.events import FinalTranscript, PartialTranscript, SpeechEnded, TranscriptionStarted
from harken.testing import ScriptedVad, drive, of_type, silence, tone

RATE = 16000


def pipeline(intervals, **realtime):
    return SpeechPipeline(ScriptedVad(intervals), VadConfig(backend="energy"),
                          RealtimeConfig(**realtime))




# ---------------------------------------------------------------- stabiliser

def test_stable_text_needs_two_agreeing_hypotheses_and_only_grows():
    s = Stabilizer(2, holdback=0)
    assert s.update("the quick") == ("", "the quick")
    assert s.update("the quick brown") == ("the quick", "brown")
    assert s.update("the quick brown fox") == ("the quick brown", "fox")
    # The model changes its mind about a stable word: stable text stays, and the words after
    # it still count ("fox" follows "brown" in both of the last two hypotheses).
    assert s.update("a quick brown fox jumps") == ("the quick brown fox", "jumps")
    assert s.update("the quick brown fox jumps over") == ("the quick brown fox jumps", "over")
    # A rewritten stable word ("leaps") never changes the stable text.
    assert s.update("the quick brown fox leaps over it") == ("the quick brown fox jumps over",
                                                              "it")


def test_stabiliser_ignores_case_and_punctuation_when_comparing():
    s = Stabilizer(2, holdback=0)
    s.update("Hello, world")
    assert s.update("hello world again") == ("hello world", "again")
    assert s.update("Hello world, again!") == ("hello world again!", "")


def test_stabiliser_with_agreement_one_freezes_every_word_at_once():
    s = Stabilizer(1, holdback=0)
    assert s.update("one two") == ("one two", "")
    assert s.update("one two three") == ("one two three", "")


def test_holdback_hides_the_last_word_which_is_often_cut_off():
    s = Stabilizer(2, holdback=1)
    assert s.update("the quick bro") == ("", "the quick")
    assert s.update("the quick brown fo") == ("the quick", "brown")
    assert s.update("the quick brown fox jum") == ("the quick brown", "fox")


def test_stabiliser_reset_starts_a_new_utterance():
    s = Stabilizer(2, holdback=0)
    s.update("a b")
    s.update("a b c")
    s.reset()
    assert s.update("x y") == ("", "x y")


# ---------------------------------------------------------------- partials

def test_partials_go_out_while_speaking_one_at_a_time():
    pipe = pipeline([(0.5, 3.5)], partial_interval_ms=300, partial_min_ms=300,
                    early_final=False, stable_min_ms=0)
    out = drive(pipe, np.concatenate([silence(0.5), tone(2.0)]))
    partials = [r for r in of_type(out, TranscribeRequest) if r.kind == "partial"]
    assert len(partials) == 1  # the first is still in flight: no second one
    first = partials[0]
    assert first.hints == DecodeHints(beam_size=1, word_timestamps=False)
    events = pipe.on_result(first, EngineOutput("hello there"))
    assert events == [PartialTranscript(1, "", "hello")]  # the last word may be cut off
    out = drive(pipe, tone(0.4))
    second = [r for r in of_type(out, TranscribeRequest) if r.kind == "partial"]
    assert len(second) == 1 and len(second[0].audio) > len(first.audio)
    events = pipe.on_result(second[0], EngineOutput("hello there world"))
    assert events == [PartialTranscript(1, "hello", "there")]


def test_no_partials_during_silence_and_stale_partials_are_dropped():
    pipe = pipeline([(0.5, 1.5)], early_final=False)
    out = drive(pipe, np.concatenate([silence(0.5), tone(1.0)]))
    partial = [r for r in of_type(out, TranscribeRequest) if r.kind == "partial"][0]
    out = drive(pipe, silence(1.0))  # the utterance ends
    assert of_type(out, SpeechEnded)
    assert not [r for r in of_type(out, TranscribeRequest) if r.kind == "partial"]
    assert pipe.on_result(partial, EngineOutput("late")) == []


def test_partials_can_be_turned_off():
    pipe = pipeline([(0.5, 3.5)], partials=False, early_final=False)
    out = drive(pipe, np.concatenate([silence(0.5), tone(3.0)]))
    assert not of_type(out, TranscribeRequest)


def test_a_failed_partial_frees_the_slot():
    pipe = pipeline([(0.5, 3.5)], early_final=False)
    out = drive(pipe, np.concatenate([silence(0.5), tone(1.0)]))
    partial = [r for r in of_type(out, TranscribeRequest) if r.kind == "partial"][0]
    assert pipe.on_failed(partial, EngineError("x")) == []
    out = drive(pipe, tone(0.4))
    assert [r for r in of_type(out, TranscribeRequest) if r.kind == "partial"]


# ---------------------------------------------------------------- early finals

def early_pipeline(intervals):
    return pipeline(intervals, partials=False, early_final=True)


def test_early_final_goes_out_during_the_silence_and_is_released_when_it_lasts():
    pipe = early_pipeline([(0.5, 1.5)])
    out = drive(pipe, np.concatenate([silence(0.5), tone(1.0), silence(0.3)]))
    reqs = of_type(out, TranscribeRequest)
    assert len(reqs) == 1 and reqs[0].kind == "final"
    assert not of_type(out, TranscriptionStarted)  # not final yet: the silence may not last
    # The answer arrives before the silence threshold: held back.
    assert pipe.on_result(reqs[0], EngineOutput("hi")) == []
    out = drive(pipe, silence(0.4))
    kinds = [type(x).__name__ for x in out]
    assert kinds == ["SpeechEnded", "ConfirmRequest", "TranscriptionStarted", "FinalTranscript"]
    assert of_type(out, ConfirmRequest)[0].request_id == reqs[0].request_id  # it stands
    assert of_type(out, FinalTranscript)[0].text == "hi"


def test_early_final_has_exactly_the_audio_of_the_plain_final():
    audio = np.concatenate([silence(0.5), tone(1.0), silence(1.0)])
    plain = pipeline([(0.5, 1.5)], partials=False, early_final=False)
    early = early_pipeline([(0.5, 1.5)])
    a = of_type(drive(plain, audio), TranscribeRequest)[0]
    b = of_type(drive(early, audio), TranscribeRequest)[0]
    assert (a.start_sample, a.end_sample) == (b.start_sample, b.end_sample)
    assert np.array_equal(a.audio, b.audio)


def test_speech_resuming_cancels_the_early_final():
    pipe = early_pipeline([(0.5, 1.5), (1.8, 2.8)])
    out = drive(pipe, np.concatenate([silence(0.5), tone(1.0), silence(0.3), tone(1.0),
                                     silence(1.0)]))
    reqs = of_type(out, TranscribeRequest)
    cancels = of_type(out, CancelRequest)
    assert [c.request_id for c in cancels] == [reqs[0].request_id]
    assert len(reqs) == 2 and len(reqs[1].audio) > len(reqs[0].audio)
    # A late answer to the cancelled request is ignored.
    assert pipe.on_result(reqs[0], EngineOutput("stale")) == []
    finals = of_type(pipe.on_result(reqs[1], EngineOutput("whole")), FinalTranscript)
    assert [f.text for f in finals] == ["whole"]


def test_pause_pieces_keep_the_early_final_when_speech_resumes():
    """With pause_pieces_ms, speech resuming after a pause keeps the early final as a
    finished piece (split=True) whose text is released while the person speaks on; the
    rest of the utterance is transcribed from where the VAD heard the voice stop, and no
    voice is heard twice (only the pause's silence is in both)."""
    pipe = pipeline([(0.5, 1.5), (1.8, 2.8)], partials=False, early_final=True,
                    pause_pieces_ms=800)
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.3), tone(1.0)])
    out = drive(pipe, audio)
    assert not of_type(out, CancelRequest)
    first = of_type(out, TranscribeRequest)[0]
    assert [c.request_id for c in of_type(out, ConfirmRequest)] == [first.request_id]
    assert of_type(out, TranscriptionStarted)  # kept: a final now, not speculation
    piece = of_type(pipe.on_result(first, EngineOutput("one")), FinalTranscript)
    assert [(f.text, f.split) for f in piece] == [("one", True)]
    out = drive(pipe, silence(1.0))
    rest = of_type(out, TranscribeRequest)[-1]
    # The rest starts inside the piece's silent tail, never before its voice ended.
    assert 1.5 * RATE <= rest.start_sample < first.end_sample
    assert not np.any(first.audio[rest.start_sample - first.start_sample:])
    assert rest.utterance_id == first.utterance_id
    finals = of_type(pipe.on_result(rest, EngineOutput("two")), FinalTranscript)
    assert [(f.text, f.split) for f in finals] == [("two", False)]


def _onset_engine(request: TranscribeRequest) -> EngineOutput:
    """A scripted engine that hears as Whisper does at a cut: one word per tone of at least
    96 ms ("low" 220 Hz, "high" 440 Hz), but only a tone whose onset is in the audio (quiet
    before it); a word that starts at the very first sample is lost, as tiny.en lost "much"
    in "consider how | much there might be"."""
    frames = request.audio[:len(request.audio) // 512 * 512].reshape(-1, 512)
    loud = np.sqrt(np.mean(frames ** 2, axis=1)) > 0.01
    words: list[str] = []
    i = 0
    while i < len(loud):
        if not loud[i]:
            i += 1
            continue
        j = i
        while j < len(loud) and loud[j]:
            j += 1
        if i > 0 and (j - i) * 512 >= 0.096 * RATE:
            run = frames[i:j].ravel()
            crossings = np.count_nonzero(np.diff(np.signbit(run)))
            words.append("high" if crossings / (len(run) / RATE) > 660 else "low")
        i = j
    return EngineOutput(" ".join(words))


def test_a_word_whose_onset_falls_in_the_pause_is_not_lost_between_pieces():
    """The early final is cut once the silence reaches the kept tail; a word can begin in
    that tail before the VAD hears it (a soft onset, like the "m" of "much"). The kept piece
    ends inside the word's onset, so the rest must start before the cut (where the VAD heard
    the voice stop), or the engine hears the word only from its middle and drops it."""
    frame = 512 / RATE
    a_start, a_end = 16 * frame, 48 * frame  # word "low": frames 16-47
    b_start = 51 * frame  # word "high" begins in frame 51, the last frame of the tail
    b_heard = 52 * frame  # the VAD calls it speech one frame late
    audio = np.concatenate([silence(a_start), tone(a_end - a_start),
                            silence(b_start - a_end), tone(1.0, freq_hz=440.0),
                            silence(1.0)])
    pipe = pipeline([(a_start, a_end), (b_heard, b_start + 1.0)], partials=False,
                    early_final=True, pause_pieces_ms=800)
    out = drive(pipe, audio, answer=_onset_engine)
    first, rest = of_type(out, TranscribeRequest)
    assert [(f.text, f.split) for f in of_type(out, FinalTranscript)] == [
        ("low", True), ("high", False)]
    assert first.end_sample == int(b_heard * RATE)  # the piece holds the onset frame
    # The rest starts where the VAD heard the first word stop: the pause belongs to both
    # pieces, the onset of the second word to the rest; no voice is heard twice.
    assert rest.start_sample == int(a_end * RATE)
    assert not np.any(rest.audio[:first.end_sample - rest.start_sample - 512])


def test_an_answer_that_came_before_the_keep_is_released_as_a_piece():
    pipe = pipeline([(0.5, 1.5), (1.8, 2.8)], partials=False, early_final=True,
                    pause_pieces_ms=800)
    out = drive(pipe, np.concatenate([silence(0.5), tone(1.0), silence(0.3)]))
    first = of_type(out, TranscribeRequest)[0]
    assert pipe.on_result(first, EngineOutput("one")) == []  # held: speculation
    out = drive(pipe, tone(0.2))
    assert [(f.text, f.split) for f in of_type(out, FinalTranscript)] == [("one", True)]


def test_a_pause_before_pause_pieces_ms_of_audio_still_revokes():
    pipe = pipeline([(0.5, 1.5), (1.8, 2.8)], partials=False, early_final=True,
                    pause_pieces_ms=5000)
    out = drive(pipe, np.concatenate([silence(0.5), tone(1.0), silence(0.3), tone(1.0)]))
    assert len(of_type(out, CancelRequest)) == 1 and not of_type(out, TranscriptionStarted)


def test_flush_confirms_an_outstanding_early_final():
    pipe = early_pipeline([(0.5, 1.5)])
    out = drive(pipe, np.concatenate([silence(0.5), tone(1.0), silence(0.3)]))
    req = of_type(out, TranscribeRequest)[0]
    out = pipe.flush()
    assert of_type(out, TranscriptionStarted) and not of_type(out, TranscribeRequest)
    assert of_type(pipe.on_result(req, EngineOutput("done")), FinalTranscript)


# ---------------------------------------------------------------- ordering

def test_finals_are_released_in_utterance_order():
    pipe = pipeline([(0.5, 1.5), (2.5, 3.5)], partials=False, early_final=False)
    out = drive(pipe, np.concatenate([silence(0.5), tone(1), silence(1), tone(1), silence(1)]))
    first, second = of_type(out, TranscribeRequest)
    assert pipe.on_result(second, EngineOutput("two")) == []  # waits for the first
    released = pipe.on_result(first, EngineOutput("one"))
    assert [f.text for f in released] == ["one", "two"]


def test_a_failed_final_is_reported_in_order_too():
    pipe = pipeline([(0.5, 1.5), (2.5, 3.5)], partials=False, early_final=False)
    out = drive(pipe, np.concatenate([silence(0.5), tone(1), silence(1), tone(1), silence(1)]))
    first, second = of_type(out, TranscribeRequest)
    assert pipe.on_result(second, EngineOutput("two")) == []
    released = pipe.on_failed(first, EngineError("boom"))
    assert isinstance(released[0], FinalFailed) and released[0].request is first
    assert isinstance(released[1], FinalTranscript)


def _speak_with_partials(pipe, hypothesis: str) -> list[TranscribeRequest]:
    """Feed 1.5 s of speech, answering each partial with ``hypothesis``; return the final
    requests that went out (the speculative one included)."""
    audio = np.concatenate([silence(0.5), tone(1.5), silence(1.0)])
    out = drive(pipe, audio, answer=lambda r: EngineOutput(hypothesis) if r.kind == "partial"
                else None)
    return [r for r in of_type(out, TranscribeRequest) if r.kind == "final"]


def test_stable_prefix_gives_the_final_the_stable_text():
    pipe = pipeline([(0.5, 2.0)], stable_prefix=True, partial_interval_ms=100,
                    stable_min_ms=0)
    finals = _speak_with_partials(pipe, "turn the lights off")
    # Stable: "turn the lights" (the last word is held back).
    assert [f.hints.prefix for f in finals] == ["turn the lights"]


def test_no_prefix_by_default():
    pipe = pipeline([(0.5, 2.0)], partial_interval_ms=100)
    finals = _speak_with_partials(pipe, "turn the lights off")
    assert finals and all(f.hints == DecodeHints() for f in finals)


def test_passes_over_too_little_audio_do_not_vote_for_stable_words():
    pipe = pipeline([(0.5, 3.5)], partial_interval_ms=100, early_final=False,
                    stable_min_ms=1500)
    audio = np.concatenate([silence(0.5), tone(3.0)])
    out = drive(pipe, audio, answer=lambda r: EngineOutput("add a more amiable woman"))
    passes = [len(r.audio) / RATE for r in of_type(out, TranscribeRequest)
              if r.kind == "partial"]
    partials = of_type(out, PartialTranscript)
    assert len(passes) == len(partials)  # every pass answered while the person speaks
    shown = [(secs, ev.stable, ev.unstable) for secs, ev in zip(passes, partials, strict=True)]
    early = [(s, u) for secs, s, u in shown if secs < 1.5]
    late = [s for secs, s, _ in shown if secs >= 1.5]
    assert early and all(s == "" and u == "add a more amiable" for s, u in early), early
    # The first two passes over 1.5 s or more agree: only then does text become stable.
    assert late[0] == "" and late[1] == "add a more amiable", late


def test_stable_text_does_not_grow_while_an_early_final_with_its_prefix_is_out():
    """A partial answered after the early final went out (it was in flight) is shown, but
    its words do not become stable: the final was bound to the stable text of that moment."""
    pipe = pipeline([(0.5, 2.0), (2.3, 2.7)], stable_prefix=True, partial_interval_ms=100,
                    stable_min_ms=0)
    held: list[TranscribeRequest] = []

    def answer(r: TranscribeRequest) -> EngineOutput | None:
        if r.kind != "partial":
            return None
        if len(r.audio) >= int(1.4 * RATE):
            held.append(r)  # still in flight when the early final goes out
            return None
        # The last passes hear two more words (held back or not yet agreed on).
        return EngineOutput("turn the lights" if len(r.audio) < int(1.2 * RATE)
                            else "turn the lights off now")

    out = drive(pipe, np.concatenate([silence(0.5), tone(1.5), silence(0.3)]), answer=answer)
    finals = [r for r in of_type(out, TranscribeRequest) if r.kind == "final"]
    assert len(held) == 1 and len(finals) == 1
    prefix = finals[0].hints.prefix
    assert prefix in ("turn the", "turn the lights off")
    # This pass agrees with the one before on words after the prefix: without the early
    # final out, they would become stable.
    shown = of_type(pipe.on_result(held[0], EngineOutput("turn the lights off now please")),
                    PartialTranscript)
    assert [p.stable for p in shown] == [prefix]
    assert shown[0].unstable.endswith("now")
    # Speech resumes: the early final is revoked, and the passes vote again.
    out = drive(pipe, tone(0.4), answer=lambda r: EngineOutput("turn the lights off now please")
                if r.kind == "partial" else None)
    assert of_type(out, CancelRequest)
    assert of_type(out, PartialTranscript)[-1].stable == "turn the lights off now"
