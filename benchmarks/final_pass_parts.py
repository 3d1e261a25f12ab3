"""Where one fast final pass's time goes: log-mel, encoder, decoder (per beam size), alignment.

Takes the complete utterances of ``benchmarks/turns.py`` (the latency set: tests/data
recordings and espeak sentences), each cut 100 ms after its true end of speech (as an early
final is), and runs the steps of :class:`harken.engine.whisper.fast_pass.FastPass` one by
one on the embedded tiny.en (int8, CPU), for each window: the log-mel of the audio in the
window, the encoder, ``generate`` with beam 5 (the default) and smaller beams, and the word
alignment of the beam-5 text; then the whole pass (``FasterWhisperEngine.transcribe``, a
final with word timings) for comparison. Prints the machine and the median milliseconds of
each step. The engine runs in this process: the engine program's pipe (a few hundred kB of
audio each way at most) is not counted.

Measured (2026-12-02, 2-core AMD EPYC, load 0.3-3.6 from other jobs, 15 s window, 2
repeats): log-mel 15 ms, encoder 161, decode beam 5 171 (beam 4 175, 3 161, 2 140, 1 123),
alignment 25, the whole pass 366 ms. The decode costs as much as the encoder: most of it
is the beam-independent part (beam 1 is 0.72 of beam 5).

Usage: python benchmarks/final_pass_parts.py [--repeats 2] [--windows 15,12]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from latency import RATE, SENTENCES, load_utterances, speech_bounds
from machine_info import machine

from harken.config import EngineConfig
from harken.engine.base import DecodeHints
from harken.engine.faster_whisper import FasterWhisperEngine
from harken.engine.whisper.fast_pass import HOP_SAMPLES, FastPass, _Decoder
from harken.engine.whisper.options import WhisperOptions

BEAMS = (5, 4, 3, 2, 1)


def _timer(took: dict[str, list[float]]) -> Callable[[str, float], float]:
    """``timed(step, started)``: record the time since ``started`` under ``step``; the time
    now."""
    def timed(step: str, started: float) -> float:
        now = time.perf_counter()
        took.setdefault(step, []).append(now - started)
        return now

    return timed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--windows", default="15,12", help="shortest windows, seconds")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    clips = []
    for utt in load_utterances(False, len(SENTENCES)):
        audio = utt.audio.astype(np.float32) / 32768.0
        _, end = speech_bounds(audio)
        clips.append(np.ascontiguousarray(audio[:int((end + 0.1) * RATE)]))
    print(f"{len(clips)} clips, {min(map(len, clips)) / RATE:.1f}-"
          f"{max(map(len, clips)) / RATE:.1f} s")
    engine = FasterWhisperEngine(EngineConfig(model="tiny.en", language="en"))
    engine.load()
    engine.transcribe(clips[0])  # warm up
    model = engine._model  # the steps below are FastPass.run's, one by one
    fast = FastPass(model)
    options = WhisperOptions()
    kwargs = engine._kwargs(options, DecodeHints())
    decoder = _Decoder(fast._tokenizer("en"), model, kwargs, options, True)
    windows = [float(w) for w in args.windows.split(",")]
    took: dict[float, dict[str, list[float]]] = {window: {} for window in windows}
    # The windows take turns on every clip, so a change in the machine's load (other jobs)
    # hits them alike.
    for _ in range(args.repeats):
        for audio in clips:
            for window in windows:
                timed = _timer(took[window])
                t = time.perf_counter()
                features = fast._features(audio, fast._frames(len(audio), window))
                t = timed("log-mel", t)
                encoded = model.encode(features)
                t = timed("encoder", t)
                results = {}
                for beam in BEAMS:
                    results[beam] = model.model.generate(
                        encoded, [decoder.prompt], beam_size=beam,
                        max_length=decoder.max_length(len(audio)), return_scores=True,
                        return_no_speech_prob=True)[0]
                    t = timed(f"decode, beam {beam}", t)
                text = decoder.finish(results[5], len(audio), "en", 1.0)
                t = time.perf_counter()
                if text is not None and text.tokens:
                    fast._align(decoder.tokenizer, [text.tokens], encoded,
                                [len(audio) // HOP_SAMPLES])
                t = timed("alignment", t)
                engine.transcribe(audio, hints=DecodeHints(
                    extra={"fast_final_min_window_s": window}))
                timed("whole pass", t)
    for window in windows:
        print(f"window {window:g} s: " + ", ".join(
            f"{step} {statistics.median(values) * 1000:.0f}"
            for step, values in took[window].items()) + " (median ms)")
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
