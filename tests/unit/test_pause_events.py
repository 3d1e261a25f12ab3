"""Pauses inside an utterance (RealtimeSTT's turn detection start/stop), from the pure core:
numpy frames pushed with a scripted VAD, event times checked to the sample."""

from __future__ import annotations

import numpy as np

from harken.config import RealtimeConfig, VadConfig, WakeConfig
from harken.core import SpeechPipeline
from harken.events import PauseEnded, PauseStarted, SpeechEnded, SpeechStarted
from harken.testing import ScriptedVad, drive, silence, tone
from harken.units import FRAME_SAMPLES

RATE = 16000
PLAIN = RealtimeConfig(partials=False, early_final=False)


def frames(n: int) -> float:
    """Stream seconds at the start of frame ``n`` (512-sample frames)."""
    return n * FRAME_SAMPLES / RATE


def speech_at(*frame_ranges: tuple[int, int]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Tone over the given [first, end) frame ranges, silence elsewhere, 40 frames after."""
    total = frame_ranges[-1][1] + 40
    audio = silence(frames(total))
    for a, b in frame_ranges:
        audio[a * FRAME_SAMPLES:b * FRAME_SAMPLES] = tone(frames(b - a))
    return audio, [(frames(a), frames(b)) for a, b in frame_ranges]


def pauses(out: list[object]) -> list[object]:
    kinds = (PauseStarted, PauseEnded, SpeechStarted, SpeechEnded)
    return [o for o in out if isinstance(o, kinds)]


def test_a_pause_inside_speech_starts_and_ends_at_the_exact_frames():
    # Speech in frames 16-47 and 56-87: an 8-frame pause (256 ms) inside one utterance
    # (the end needs 16 frames of silence: 500 ms rounded up to whole frames).
    audio, spoken = speech_at((16, 48), (56, 88))
    pipe = SpeechPipeline(ScriptedVad(spoken), VadConfig(
        backend="energy", post_speech_silence_ms=500, pause_events=True), PLAIN)
    out = pauses(drive(pipe, audio, chunk_samples=320))
    assert [type(o).__name__ for o in out] == [
        "SpeechStarted", "PauseStarted", "PauseEnded", "PauseStarted", "SpeechEnded",
        "PauseEnded"]
    assert out[1] == PauseStarted(1, frames(48))
    assert out[2] == PauseEnded(1, frames(56), resumed=True)
    assert out[3] == PauseStarted(1, frames(88))
    # The utterance ends once the 16th silent frame is in: the stream is at frame 104.
    assert out[5] == PauseEnded(1, frames(104), resumed=False)
    assert out[4].end == frames(88)


def test_no_pause_events_unless_asked_for():
    audio, spoken = speech_at((16, 48), (56, 88))
    pipe = SpeechPipeline(ScriptedVad(spoken), VadConfig(
        backend="energy", post_speech_silence_ms=500), PLAIN)
    out = drive(pipe, audio, chunk_samples=320)
    assert not [o for o in out if isinstance(o, (PauseStarted, PauseEnded))]
    assert len([o for o in out if isinstance(o, SpeechEnded)]) == 1


def test_a_manual_recording_has_no_pauses_and_ends_an_open_one():
    audio, spoken = speech_at((16, 48), (56, 88))
    pipe = SpeechPipeline(ScriptedVad(spoken), VadConfig(
        backend="energy", post_speech_silence_ms=500, pause_events=True), PLAIN)
    out = pipe.feed(audio[:52 * FRAME_SAMPLES])  # 4 frames into the pause
    assert pauses(out)[-1] == PauseStarted(1, frames(48))
    out = pipe.force_start()  # the recording goes on until force_end: no end of turn
    assert out == [PauseEnded(1, frames(52), resumed=False)]
    out = pipe.feed(audio[52 * FRAME_SAMPLES:]) + pipe.force_end()
    assert not [o for o in out if isinstance(o, (PauseStarted, PauseEnded))]
    assert [type(o).__name__ for o in pauses(out)] == ["SpeechEnded"]


def test_a_speaker_fading_out_starts_the_pause_where_the_voice_faded():
    # Background noise at -50 dBFS; the VAD still says "speech" for 4 quiet frames after
    # the voice stops: the silence (and the pause) is counted from where it faded.
    rng = np.random.default_rng(7)
    audio, spoken = speech_at((40, 80))
    audio += (rng.standard_normal(len(audio)) * 10 ** (-50 / 20)).astype(np.float32)
    vad = ScriptedVad([(frames(40), frames(84))])
    pipe = SpeechPipeline(vad, VadConfig(backend="energy", post_speech_silence_ms=500,
                                         pause_events=True), PLAIN)
    out = pauses(drive(pipe, audio, chunk_samples=512))
    assert out[1] == PauseStarted(1, frames(80))
    assert out[-1] == PauseEnded(1, frames(84 + 16 - 4), resumed=False)


def test_pauses_of_utterances_that_are_no_command_are_not_reported():
    from harken.wake.phrase import PhraseWakeWord

    audio, spoken = speech_at((16, 48), (56, 88))
    pipe = SpeechPipeline(ScriptedVad(spoken), VadConfig(
        backend="energy", post_speech_silence_ms=500, pause_events=True), PLAIN,
        wake=PhraseWakeWord(("hey harken",)), wake_config=WakeConfig(words=("hey harken",)))
    out = drive(pipe, audio, chunk_samples=320)
    assert not [o for o in out if isinstance(o, (PauseStarted, PauseEnded, SpeechStarted))]
