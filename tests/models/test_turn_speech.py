"""Smart end of turn on real speech, with the real Smart Turn model, VAD and faster-whisper.

Utterances with a mid-thought pause of 0.6-1.0 s are built from the tests/data recordings
(cut at their quietest 30 ms between 35 % and 65 % of the speech, the pause filled with
noise at the clip's own floor) and from espeak-ng sentences spoken in two parts cut at a
word. The pure pipeline is driven with them, each final request answered by the real
engine before the next 20 ms of audio (an engine with no delay), so the decisions depend
on the audio and the words only and the test is repeatable.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from harken.config import EngineConfig, RealtimeConfig, VadConfig
from harken.core.pipeline import SpeechPipeline
from harken.engine.base import TranscribeRequest
from harken.events import FinalTranscript, SpeechEnded
from harken.vad.factory import create_vad

pytestmark = pytest.mark.model

DATA = Path(__file__).resolve().parents[1] / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text())
RATE = 16000


def read(name: str) -> np.ndarray:
    with wave.open(str(DATA / f"{name}.wav")) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(
            np.float32) / 32768


def quiet_cut(name: str) -> int:
    """Sample index of the recording's quietest 30 ms between 35 % and 65 % of its speech."""
    audio = read(name)
    start, end = MANIFEST[name]["speech_s"]
    lo, hi = int((start + 0.35 * (end - start)) * RATE), int((start + 0.65 * (end - start))
                                                           * RATE)
    win = 480
    levels = [float(np.mean(audio[i:i + win] ** 2)) for i in range(lo, hi - win, 160)]
    return lo + int(np.argmin(levels)) * 160 + win // 2


def cut_with_pause(name: str, pause_s: float) -> np.ndarray:
    """The recording with a pause inserted at :func:`quiet_cut`."""
    audio = read(name)
    cut = quiet_cut(name)
    rng = np.random.default_rng(0)
    gap = rng.standard_normal(int(pause_s * RATE)) * 10 ** (MANIFEST[name]["noise_floor_dbfs"]
                                                             / 20)
    return np.concatenate([audio[:cut], gap.astype(np.float32), audio[cut:]])


def spoken_in_two(espeak, first: str, rest: str, pause_s: float) -> np.ndarray:
    def trimmed(x: np.ndarray) -> np.ndarray:
        loud = np.flatnonzero(np.abs(x) > 0.01)
        return x[loud[0]:loud[-1] + 1]

    return np.concatenate([trimmed(espeak(first)), np.zeros(int(pause_s * RATE), np.float32),
                           trimmed(espeak(rest))])


@pytest.fixture(scope="module")
def engine():
    from harken.engine.faster_whisper import FasterWhisperEngine

    eng = FasterWhisperEngine(EngineConfig())
    eng.load()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def smart_turn():
    from harken.turn.smart_turn import SmartTurnModel

    model = SmartTurnModel()
    model.load()
    yield model
    model.close()


def endings(audio: np.ndarray, engine, turn, detection: str) -> tuple[list[float], list[str]]:
    """Stream seconds of each (kept) SpeechEnded after the audio's start, and the finals."""
    cfg = VadConfig(turn_detection=detection)
    vad = create_vad(cfg)
    vad.load()
    pipe = SpeechPipeline(vad, cfg, RealtimeConfig(partials=False),
                          turn=turn if detection == "smart" else None)
    stream = np.concatenate([np.zeros(RATE // 2, np.float32), audio,
                             np.zeros(2 * RATE, np.float32)])
    ends: list[float] = []
    finals: list[str] = []
    for i in range(0, len(stream), 320):
        outs = pipe.feed(stream[i:i + 320])
        while outs:
            o = outs.pop(0)
            if isinstance(o, TranscribeRequest):
                outs.extend(pipe.on_result(o, engine.transcribe(o.audio, hints=o.hints)))
            elif isinstance(o, SpeechEnded) and not o.discarded:
                ends.append(pipe.position / RATE - 0.5)
            elif isinstance(o, FinalTranscript):
                finals.append(o.text)
    vad.close()
    return ends, finals


def test_the_model_hears_finished_and_unfinished_recordings(smart_turn) -> None:
    def upto(name: str, end: int) -> np.ndarray:  # then 200 ms of silence
        return np.concatenate([read(name)[:end], np.zeros(int(0.2 * RATE), np.float32)])

    finished = [smart_turn.predict(upto(n, int((MANIFEST[n]["speech_s"][1] + 0.05) * RATE)))
                for n in ("austen_0870", "austen_0890", "goforward", "two_cities_06")]
    # "and mister john dashwood had then leisure to consider how much" | "there might be
    # ..." and "he might even have been made" | "amiable himself": mid-sentence.
    unfinished = [smart_turn.predict(upto(n, quiet_cut(n)))
                  for n in ("austen_0870", "austen_0930")]
    assert min(finished) > 0.7, finished
    assert max(unfinished) < 0.3, unfinished


def test_mid_thought_pauses_are_split_less_and_finished_turns_end_sooner(
        engine, smart_turn, espeak) -> None:
    mid = [cut_with_pause("austen_0870", 0.8), cut_with_pause("austen_0930", 0.7),
           spoken_in_two(espeak, "Can you send the report to", "Michael before the meeting?",
                         0.9),
           spoken_in_two(espeak, "I was thinking that maybe we could",
                         "go to the beach tomorrow.", 0.6)]
    splits = {"fixed": 0, "smart": 0}
    for audio in mid:
        for detection in splits:
            ends, _ = endings(audio, engine, smart_turn, detection)
            splits[detection] += len(ends) - 1
    assert splits["fixed"] == len(mid)  # 500 ms of silence ends every one of them
    assert splits["smart"] <= 1, splits

    complete = [read("austen_0890"), read("goforward"),
                espeak("We will meet at the station at half past nine tomorrow morning.")]
    sooner = []
    for audio in complete:
        (fixed_end,), fixed_text = endings(audio, engine, smart_turn, "fixed")
        (smart_end,), smart_text = endings(audio, engine, smart_turn, "smart")
        assert smart_text == fixed_text
        sooner.append(fixed_end - smart_end)
    # The early final is cut at the first silent frame and its words come back at once here,
    # so a finished turn ends at min_silence_ms (200) instead of 500 ms.
    assert min(sooner) > 0.2, sooner


def test_a_recorder_with_smart_turns_transcribes_real_speech() -> None:
    from harken import Recorder

    audio = np.concatenate([np.zeros(RATE // 2, np.float32), read("goforward"),
                            np.zeros(RATE, np.float32)])
    with Recorder(source="push", turn_detection="smart") as rec:
        for i in range(0, len(audio), 320):
            rec.feed_audio(audio[i:i + 320])
        rec.flush(60)
        rec.close()
        texts = [t.text for t in rec.transcripts()]
    assert len(texts) == 1 and "forward" in texts[0].lower()
