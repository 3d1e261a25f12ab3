"""Wake word detection rate and false activations, per backend, on espeak-ng and human speech.

Run: ``python benchmarks/wake.py [--backends phrase,porcupine,openwakeword] [--quick]``
(needs espeak-ng; the phrase backend needs faster-whisper and the embedded tiny.en model,
Porcupine ``pvporcupine==1.9.5``, openWakeWord ``pyopen-wakeword``). Runs on the main thread.

- Wake clips: the wake phrase spoken by espeak-ng in 4 voices x 4 speeds, clean and mixed
  with white noise at 20 dB and 10 dB SNR, each with 0.5 s of silence before and 1 s after.
  A clip counts as detected when the backend reports the wake word anywhere in it.
- Other speech: the human recordings in tests/data plus espeak-ng sentences in several voices,
  joined with pauses into one stream of at least ``--other-minutes`` minutes (5 by default).
  Every wake word reported there is a false activation.

Frame backends (Porcupine, openWakeWord) hear every 512-sample frame. The phrase backend
follows the recorder's path: the webrtc+silero VAD and the segmenter cut utterances, the
first stage (:meth:`PhraseWakeWord.plausible`) filters them, and the rest are transcribed
with the phrases as hotwords and matched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harken.config import EngineConfig, VadConfig
from harken.core.segmenter import Segment, Segmenter, UtteranceEnded, UtteranceStarted
from harken.vad import FRAME_SAMPLES, create_vad
from harken.wake import OpenWakeWordDetector, PhraseWakeWord, PorcupineDetector
from harken.wake.base import WakeWordDetector

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
CACHE = ROOT / ".cache" / "speech"
RATE = 16000
VOICES = ("en-us", "en", "en-gb+m3", "en-us+f3")
SPEEDS = (140, 160, 180, 200)
SNRS_DB = (None, 20.0, 10.0)

WAKE = {  # backend -> (phrase spoken, wake words given to the backend)
    "phrase": ("hey harken", ("hey harken",)),
    "phrase-jarvis": ("jarvis", ("jarvis",)),
    "phrase-0.6": ("hey harken", ("hey harken",)),  # sensitivity 0.6: hotwords + prompt
    "phrase-jarvis-0.6": ("jarvis", ("jarvis",)),
    "porcupine": ("jarvis", ("jarvis",)),
    "openwakeword": ("hey jarvis", ("hey_jarvis",)),
}

SENTENCES = (
    "the weather will be sunny this afternoon with a light breeze",
    "please remember to buy milk, bread and a dozen eggs",
    "have you heard the news about the new library downtown",
    "harvest season starts early in the northern valleys",
    "hey, how are you doing today",
    "the train to boston leaves at half past seven",
    "travis parked the car behind the old barn",
    "i think we should paint the kitchen a warmer colour",
    "the museum opens at nine in the morning on weekdays",
    "could you turn the music down a little please",
    "our meeting was moved to thursday afternoon",
    "she bought three tickets for the concert on friday",
    "hark, the herald angels sing at christmas",
    "the computer in the office needs a new keyboard",
    "he jogged around the park before breakfast",
    "there is a small bakery on the corner of the street",
    "my sister is learning to play the violin",
    "the river flooded after a week of heavy rain",
    "turn left at the traffic lights and keep going",
    "we watched a documentary about whales last night",
    "the children planted tomatoes in the garden",
    "a harsh winter is expected in the mountains",
    "the package should arrive by the end of the week",
    "jars of honey were lined up on the shelf",
    "let us meet at the cafe near the station",
    "the hospital is looking for more volunteers",
    "hey there, is anybody home",
    "the recipe calls for two cups of flour",
    "our neighbours adopted a very friendly dog",
    "the bridge will be closed for repairs until june",
    "he forgot his umbrella at the restaurant",
    "the students presented their science projects",
    "a hawk circled slowly above the open field",
    "the lights in the hallway keep flickering",
    "what time does the pharmacy close tonight",
    "the marathon runners crossed the finish line",
    "i would like a cup of tea with lemon",
    "the garage door makes a terrible noise",
    "they hiked to the top of the hill at sunrise",
    "the phone battery is almost empty again",
    "harley took the motorbike out for a ride",
    "the orchestra tuned their instruments quietly",
    "please close the window before you leave",
    "the farmer sold apples at the weekend market",
    "our flight was delayed by nearly two hours",
)


def espeak(text: str, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    """espeak-ng speech as float32 mono 16 kHz (cached on disk like tests/conftest.py)."""
    key = hashlib.sha1(f"{voice}|{speed}|50|{text}".encode()).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{key}.wav"
    if not path.exists():
        tmp = path.with_suffix(".tmp.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", "50", "-w",
                        str(tmp), text], check=True, capture_output=True)
        tmp.replace(path)
    return read_wav(path)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    audio = pcm.astype(np.float32) / 32768.0
    if rate != RATE:
        import soxr

        audio = soxr.resample(audio, rate, RATE).astype(np.float32)
    return audio


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def with_noise(audio: np.ndarray, snr_db: float | None, seed: int) -> np.ndarray:
    if snr_db is None:
        return audio
    voiced = audio[np.abs(audio) > 0.01]
    rms = float(np.sqrt(np.mean(voiced ** 2))) if len(voiced) else 0.1
    noise = np.random.default_rng(seed).standard_normal(len(audio)) * rms / 10 ** (snr_db / 20)
    return np.clip(audio + noise.astype(np.float32), -1, 1).astype(np.float32)


def wake_clips(text: str, quick: bool) -> list[tuple[str, np.ndarray]]:
    clips = []
    voices = VOICES[:2] if quick else VOICES
    speeds = SPEEDS[::2] if quick else SPEEDS
    for v, voice in enumerate(voices):
        for s, speed in enumerate(speeds):
            clean = np.concatenate([silence(0.5), espeak(text, voice, speed), silence(1.0)])
            for snr in SNRS_DB:
                label = f"{voice}/{speed}/{'clean' if snr is None else f'{snr:.0f}dB'}"
                clips.append((label, with_noise(clean, snr, seed=100 * v + s)))
    return clips


def other_speech(minutes: float) -> np.ndarray:
    """Human recordings, then espeak sentences in rotating voices, with 0.6-1.6 s pauses."""
    rng = np.random.default_rng(11)
    parts: list[np.ndarray] = []
    total = 0
    manifest = json.loads((DATA / "manifest.json").read_text())
    for name in sorted(manifest):
        parts += [read_wav(DATA / f"{name}.wav"), silence(rng.uniform(0.6, 1.6))]
        total += len(parts[-2]) + len(parts[-1])
    i = 0
    while total < minutes * 60 * RATE:
        sentence = SENTENCES[i % len(SENTENCES)]
        voice = VOICES[(i // len(SENTENCES) + i) % len(VOICES)]
        speed = SPEEDS[(i * 3) % len(SPEEDS)]
        parts += [espeak(sentence, voice, speed), silence(rng.uniform(0.6, 1.6))]
        total += len(parts[-2]) + len(parts[-1])
        i += 1
    return np.concatenate(parts)


def frame_hits(detector: WakeWordDetector, audio: np.ndarray) -> list[float]:
    out = []
    for i in range(len(audio) // FRAME_SAMPLES):
        if detector.process(audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]) is not None:
            out.append((i + 1) * FRAME_SAMPLES / RATE)
    return out


class PhrasePath:
    """VAD + segmenter + first stage + engine + matcher, as the recorder runs them."""

    def __init__(self, phrase: PhraseWakeWord) -> None:
        from harken.engine.faster_whisper import FasterWhisperEngine

        self.phrase = phrase
        self.vad = create_vad(VadConfig())
        self.vad.load()
        self.engine = FasterWhisperEngine(EngineConfig(model="tiny.en", cpu_threads=2))
        self.engine.load()
        self.checks = 0
        self.engine_s = 0.0
        self.texts: list[str] = []

    def hits(self, audio: np.ndarray) -> list[float]:
        self.vad.reset()
        segmenter = Segmenter(VadConfig())
        found: list[float] = []
        voiced = 0
        for i in range(len(audio) // FRAME_SAMPLES):
            frame = audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            speech = self.vad.is_speech(frame)
            if segmenter.active and speech:
                voiced += FRAME_SAMPLES
            for ev in segmenter.push(frame, speech):
                if isinstance(ev, UtteranceStarted):
                    voiced = 0
                elif isinstance(ev, UtteranceEnded):
                    pass
                elif isinstance(ev, Segment) and self.phrase.plausible(len(ev.audio), voiced):
                    self.checks += 1
                    started = time.perf_counter()
                    out = self.engine.transcribe(ev.audio, hints=self.phrase.request_hints())
                    self.engine_s += time.perf_counter() - started
                    self.texts.append(out.text)
                    if self.phrase.match(out.text) is not None:
                        found.append(ev.end_sample / RATE)
        return found

    def close(self) -> None:
        self.engine.close()
        self.vad.close()


def run_backend(name: str, quick: bool, other: np.ndarray) -> dict[str, object]:
    spoken, words = WAKE[name]
    make: Callable[[], WakeWordDetector] | None = None
    path: PhrasePath | None = None
    if name.startswith("phrase"):
        path = PhrasePath(PhraseWakeWord(words, sensitivity=0.6 if "0.6" in name else 0.5))
    elif name == "porcupine":
        def make() -> WakeWordDetector:
            return PorcupineDetector(words, 0.5)
    else:
        def make() -> WakeWordDetector:
            return OpenWakeWordDetector(words, 0.5)

    def detect(audio: np.ndarray) -> tuple[list[float], float]:
        started = time.perf_counter()
        if path is not None:
            found = path.hits(audio)
        elif make is not None:
            detector = make()
            detector.load()
            try:
                found = frame_hits(detector, audio)
            finally:
                detector.close()
        else:
            found = []
        return found, time.perf_counter() - started

    per_snr: dict[str, list[int]] = {}
    missed = []
    for label, clip in wake_clips(spoken, quick):
        heard = len(path.texts) if path is not None else 0
        found, _ = detect(clip)
        snr = label.rsplit("/", 1)[1]
        per_snr.setdefault(snr, []).append(int(bool(found)))
        if not found:
            texts = path.texts[heard:] if path is not None else []
            missed.append(f"{label} {texts}" if path is not None else label)
    if path is not None:
        path.texts.clear()
        path.checks = 0
    false_hits, seconds = detect(other)
    result: dict[str, object] = {
        "backend": name, "spoken": spoken,
        "detected": {k: f"{sum(v)}/{len(v)}" for k, v in per_snr.items()},
        "missed": missed,
        "other_speech_min": round(len(other) / RATE / 60, 2),
        "false_activations": len(false_hits),
        "false_at_s": [round(t, 1) for t in false_hits],
        "rtf_other": round(seconds / (len(other) / RATE), 3),
    }
    if path is not None:
        result["wake_checks_on_other"] = path.checks
        result["false_texts"] = [t for t in path.texts if path.phrase.match(t)]
        path.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backends", default="phrase,phrase-jarvis,phrase-0.6,"
                        "phrase-jarvis-0.6,porcupine,openwakeword")
    parser.add_argument("--other-minutes", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="fewer voices and speeds")
    args = parser.parse_args()
    print(f"# {platform.machine()} {platform.python_version()}, espeak-ng voices {VOICES}, "
          f"speeds {SPEEDS}, SNR {SNRS_DB}", flush=True)
    other = other_speech(args.other_minutes)
    for name in args.backends.split(","):
        if name not in WAKE:
            print(f"unknown backend {name!r}; choose from {', '.join(WAKE)}", file=sys.stderr)
            return 2
        try:
            result = run_backend(name, args.quick, other)
        except ImportError as exc:
            result = {"backend": name, "skipped": str(exc)}
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
