"""Phone agent latency: baresip callers speaking human recordings to an echo agent.

One :class:`harken.phone.PhoneAgent` (echo reply, embedded tiny.en, default VAD with
500 ms of silence ending a turn, the default voice (Piper) or ``--speech-engine``)
answers Debian's baresip on 127.0.0.1.
Each caller's microphone is a WAV of recordings from tests/data at 8 kHz (the clips whose
inner pauses are under 0.1 s: the five Austen clips and goforward, in
rotation), each followed by enough silence for the echo to finish. baresip records what it
sent and what it heard, both from the start of the call's audio.

Metrics (all read off baresip's two recordings, 10 ms RMS above -40 dBFS):

- **turn latency**: end of the caller's speech (last loud frame of the clip in the sent
  recording) -> first reply audio in the heard recording; p50/p95 over turns.
- **barge-in latency**: the caller starts speaking again about 1 s into the agent's reply;
  caller onset (sent) -> end of the agent's audio (heard); p50/p95. A reply is its sounds
  with pauses under 0.8 s joined: a caller starting in a pause between its sentences
  barges in too.
- **concurrency**: N = 1, 2, 4, 8 callers at once (started 0.37 s apart), turn latency p50/p95.
- **missed**: turns with no reply heard before the caller's next clip; **busy**: callers
  refused with 486 (pjsua2-python's build answers at most 4 calls at once).
- **CPU**: CPU time of the SIP program and of the agent's process (VAD, calls, pipes) per
  second of wall time (100% = one core); the engine programs are not counted.

Usage: ``python benchmarks/phone.py [--turns 10] [--concurrent-turns 4] [--calls 1,2,4,8]
[--barge 6] [--turn-detection fixed|smart] [--preemptive on|off] [--engines N]
[--json out.json]``.
Takes about 6 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine_info import machine  # noqa: E402

from harken.config import VadConfig  # noqa: E402
from harken.phone import BaresipCaller, PhoneAgent, SpeakerVoice  # noqa: E402
from harken.phone.timeline import active_spans, to_8k_int16  # noqa: E402

DATA = Path(__file__).parent.parent / "tests" / "data"
CLIPS = ["austen_0880", "goforward", "austen_0930", "austen_0890", "austen_0920",
         "austen_0870"]
RATE = 8000


def load(name: str) -> np.ndarray:
    with wave.open(str(DATA / f"{name}.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return to_8k_int16(pcm.astype(np.float32) / 32768.0, w.getframerate())


def turn_script(turns: int, offset: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Caller audio and the (start, end) seconds of each clip's speech in it."""
    parts = [np.zeros(RATE // 2, np.int16)]
    spans = []
    t = 0.5
    for i in range(turns):
        clip = load(CLIPS[(i + offset) % len(CLIPS)])
        speech = active_spans(clip)
        spans.append((t + speech[0][0], t + speech[-1][1]))
        gap = len(clip) / RATE * 1.3 + 4.0  # the echo (a voice speaks a bit slower) + latency
        parts += [clip, np.zeros(int(gap * RATE), np.int16)]
        t += len(clip) / RATE + gap
    return np.concatenate(parts), spans


def barge_script(reps: int, reply_after: float) -> tuple[np.ndarray, list[float]]:
    """A long clip, then a short one ~1 s into its echo (which starts ``reply_after`` s after
    the clip), then silence; ``reps`` times."""
    long, short = load("austen_0870"), load("goforward")
    parts = [np.zeros(RATE // 2, np.int16)]
    onsets = []
    t = 0.5
    gap = reply_after + 1.0
    for _ in range(reps):
        t += len(long) / RATE + gap
        onsets.append(t + active_spans(short)[0][0])
        parts += [long, np.zeros(int(gap * RATE), np.int16), short,
                  np.zeros(int(8.0 * RATE), np.int16)]
        t += len(short) / RATE + 8.0
    return np.concatenate(parts), onsets


def run_calls(agent: PhoneAgent, audios: list[np.ndarray], workdir: Path,
              stagger: float = 0.37) -> list[BaresipCaller]:
    callers = []
    for i, audio in enumerate(audios):
        caller = BaresipCaller(agent.uri, audio, workdir / f"call{len(list(workdir.iterdir()))}",
                               max_seconds=len(audio) / RATE + 30)
        caller.start()
        callers.append(caller)
        if i + 1 < len(audios):
            time.sleep(stagger)
    deadline = time.monotonic() + max(len(a) for a in audios) / RATE + 40
    for caller in callers:
        while time.monotonic() < deadline and "terminated" not in caller.log and \
                caller.wait(0) is None:
            time.sleep(0.1)
        caller.close()
    return callers


def turn_latencies(caller: BaresipCaller, n: int) -> tuple[list[float], int]:
    # A span under 0.1 s is a click, not a clip (one at a recording's end once counted as
    # the next clip's start and made a reply that was heard count as missed).
    sent = [(s, e) for s, e in active_spans(caller.sent()) if e - s >= 0.1]
    heard = active_spans(caller.heard(), min_gap_ms=150)
    # The clips are the sent recording's spans (their inner pauses are < 0.3 s).
    latencies, missed = [], 0
    for i, (_, end) in enumerate(sent[:n]):
        nxt = sent[i + 1][0] if i + 1 < len(sent) else float("inf")
        onset = next((s for s, _ in heard if end < s < nxt), None)
        if onset is None:
            missed += 1
        else:
            latencies.append(onset - end)
    return latencies, missed


REPLY_GAP_MS = 800
"""Pauses shorter than this inside the agent's audio are pauses of one reply (between its
sentences, or after the first words of a long first sentence)."""


def barge_latencies(caller: BaresipCaller, onsets: list[float]) -> tuple[list[float], int]:
    """Caller onset -> the agent's audio stops, for each barge-in; and how many found no
    reply playing. A caller who starts in a pause between two sentences of the reply barges
    into it too (counting only continuous sound missed those: 1-2 of 6 runs): the latency
    is then the end of the last sound before the reply stopped, 0 if that was the pause.
    """
    sent = active_spans(caller.sent())
    heard = active_spans(caller.heard(), min_gap_ms=REPLY_GAP_MS)
    out, missed = [], 0
    for planned in onsets:
        onset = min((s for s, _ in sent), key=lambda s: abs(s - planned))
        playing = [(s, e) for s, e in heard if s < onset < e + 0.05]
        if not playing:
            missed += 1
            near = [(round(s, 2), round(e, 2)) for s, e in heard if onset - 3 < e and
                    s < onset + 3]
            print(f"  barge-in at {onset:.2f} s missed: reply audio heard near it {near}")
            continue
        out.append(max(0.0, playing[-1][1] - onset))
        if out[-1] > 0.3:
            near = [(round(s, 2), round(e, 2)) for s, e in active_spans(
                caller.heard(), min_gap_ms=150) if playing[-1][0] <= s < playing[-1][1]]
            print(f"  barge-in at {onset:.2f} s took {out[-1]:.2f} s: reply audio {near}")
    return out, missed


def cpu_seconds(agent: PhoneAgent) -> tuple[float, float]:
    """CPU seconds (user + system) so far of the SIP program and of this process."""
    import psutil

    def used(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return float(times.user + times.system)

    sip = agent._sip  # noqa: SLF001 - measuring, not using
    pid = sip.pid if sip is not None else None
    return (used(psutil.Process(pid)) if pid else float("nan"), used(psutil.Process()))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10, help="turns of the single call")
    parser.add_argument("--concurrent-turns", type=int, default=4,
                        help="turns per call when N > 1")
    parser.add_argument("--calls", default="1,2,4,8")
    parser.add_argument("--barge", type=int, default=6, help="barge-ins measured")
    parser.add_argument("--port", type=int, default=5098)
    parser.add_argument("--speech-engine", default=None,
                        help="piper, espeak, ... (default: the Speaker's default, Piper)")
    parser.add_argument("--turn-detection", default="fixed", choices=["fixed", "smart"],
                        help="how the agent ends a turn (smart: the turn model, VadConfig)")
    parser.add_argument("--preemptive", default="on", choices=["on", "off"],
                        help="start the echo on the early final (PhoneAgent(preemptive=))")
    parser.add_argument("--engines", type=int, default=None,
                        help="engine programs (PhoneAgent(engines=); 0: harken serve's default)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    voice = SpeakerVoice(engine=args.speech_engine)
    print(f"agent: echo, tiny.en (embedded), webrtc+silero VAD, 500 ms silence, turn "
          f"detection {args.turn_detection}, preemptive replies {args.preemptive}, voice "
          f"{voice.host.spec.engine} {voice.host.spec.voice}; callers: baresip 127.0.0.1, PCMU")
    results: dict[str, object] = {"machine": machine(), "turn_detection": args.turn_detection,
                                  "preemptive": args.preemptive}
    agent = PhoneAgent(echo=True, listen=f"127.0.0.1:{args.port}", max_calls=8, voice=voice,
                       vad=VadConfig(turn_detection=args.turn_detection),
                       preemptive=args.preemptive == "on",
                       **({} if args.engines is None else {"engines": args.engines}))
    # (pjsua2-python 2.15.1 answers at most 4 calls at once whatever max_calls says: the
    # 5th caller gets 486 Busy, which the N=8 line shows as "busy".)
    t0 = time.monotonic()
    agent.start()
    print(f"agent start: {time.monotonic() - t0:.2f} s; engines={agent.engines} "
          "(0: harken serve's default)")
    with tempfile.TemporaryDirectory(prefix="harken-phone-bench-") as tmp:
        work = Path(tmp)
        try:
            for n in [int(x) for x in args.calls.split(",")]:
                turns = args.turns if n == 1 else args.concurrent_turns
                audios = [turn_script(turns, i)[0] for i in range(n)]
                cpu0, wall0 = cpu_seconds(agent), time.monotonic()
                callers = run_calls(agent, audios, work)
                cpu = [(b - a) / (time.monotonic() - wall0)
                       for a, b in zip(cpu0, cpu_seconds(agent), strict=True)]
                lat: list[float] = []
                missed = 0
                busy = sum("486 Busy" in c.log for c in callers)
                for caller in callers:
                    got, miss = turn_latencies(caller, turns)
                    lat += got
                    missed += miss
                print(f"N={n}: {len(lat)} turns, turn latency p50 {pct(lat, 50):.3f} s, "
                      f"p95 {pct(lat, 95):.3f} s, max {max(lat, default=float('nan')):.3f} s,"
                      f" missed {missed}, busy {busy}; CPU (one core = 100%): SIP program "
                      f"{cpu[0]:.0%}, agent process {cpu[1]:.0%}", flush=True)
                results[f"turn_N{n}"] = {"latencies": lat, "missed": missed, "busy": busy,
                                         "cpu_sip": cpu[0], "cpu_agent": cpu[1]}
            if args.barge:
                first = results.get("turn_N1")
                typical = float(np.median(first["latencies"])) if isinstance(first, dict) \
                    and first["latencies"] else 1.0
                audio, onsets = barge_script(args.barge, typical)
                (caller,) = run_calls(agent, [audio], work)
                lat, missed = barge_latencies(caller, onsets)
                print(f"barge-in: {len(lat)} of {len(onsets)}, latency p50 {pct(lat, 50):.3f} s"
                      f", p95 {pct(lat, 95):.3f} s, missed {missed}", flush=True)
                results["barge"] = {"latencies": lat, "missed": missed}
        finally:
            agent.close()
    print(f"agent errors: {len(agent.errors)} {[str(e) for e in agent.errors[:3]]}; calls "
          f"answered {len(agent.finished_calls)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
