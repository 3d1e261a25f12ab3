"""harken.compat's RealtimeSTT flow on real speech and the real tiny.en model: text(),
on_transcription_start(audio) with its veto, the VAD callbacks, the recorded audio."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from harken.compat import AudioToTextRecorder

pytestmark = pytest.mark.model

PAUSE = np.zeros(16000, np.float32)


def test_realtimestt_flow_on_real_speech(espeak: Any) -> None:
    seen: list[str] = []
    audios: list[np.ndarray] = []
    chunks: list[bytes] = []

    def on_start(audio: np.ndarray) -> bool:
        audios.append(audio)
        return len(audios) == 1  # skip the first recording's final

    first, second = espeak("Good morning everybody."), espeak("The quick brown fox jumps.")
    audio = np.concatenate([PAUSE, first, PAUSE, second, PAUSE, PAUSE])
    with AudioToTextRecorder(model="tiny.en", use_microphone=False,
                             post_speech_silence_duration=0.5,
                             on_transcription_start=on_start,
                             on_vad_detect_start=lambda: seen.append("detect_start"),
                             on_vad_detect_stop=lambda: seen.append("detect_stop"),
                             on_recording_start=lambda: seen.append("recording_start"),
                             on_recording_stop=lambda: seen.append("recording_stop"),
                             on_turn_detection_start=lambda: seen.append("turn_start"),
                             on_turn_detection_stop=lambda: seen.append("turn_stop"),
                             on_recorded_chunk=chunks.append,
                             final_transcription_word_timestamps=True) as rec:
        pcm = (audio * 32767).astype(np.int16).tobytes()
        for i in range(0, len(pcm), 4096):
            rec.feed_audio(pcm[i:i + 4096])
        assert rec.text() is None  # vetoed by on_transcription_start
        got: list[str | None] = []
        assert rec.text(got.append) is None
        assert rec.drain_audio_input(30)
    text = got[0]
    assert text is not None and "quick" in text.lower() and text.endswith(".")
    assert len(audios) == 2
    assert abs(len(audios[0]) / 16000 - len(first) / 16000) < 1.5  # the first recording
    assert rec.last_transcription_bytes is not None and len(rec.last_transcription_bytes) \
        == len(audios[1])
    meta = rec.last_transcription_metadata
    assert meta is not None and any("quick" in w["word"].lower() for w in meta["words"])
    assert seen[:3] == ["detect_start", "detect_stop", "recording_start"]
    # Turn detection: each pause inside a recording starts it and speech (or the recording's
    # stop) ends it; each recording ends in a pause, stopped right after recording_stop.
    turns = [e for e in seen if e.startswith("turn_")]
    assert turns == ["turn_start", "turn_stop"] * (len(turns) // 2), seen
    stops = [i for i, e in enumerate(seen) if e == "recording_stop"]
    assert len(stops) == 2 and all(seen[i + 1] == "turn_stop" for i in stops), seen
    assert sum(len(c) for c in chunks) == len(pcm)
