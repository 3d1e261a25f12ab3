"""Test kit for harken users and harken's own tests: synthetic audio, a scripted VAD,
:func:`drive` (the pure pipeline run over audio the way a source and an engine would), word
error rates, and a soak driver that streams minutes of audio through a Recorder.

Nothing here touches devices, models or the network unless the settings given to
:func:`soak` name them. :func:`soak` needs ``psutil`` (in the ``test`` extra).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from .engine.base import EngineOutput, TranscribeRequest
from .units import SAMPLE_RATE

if TYPE_CHECKING:
    from .core.pipeline import Output, SpeechPipeline

__all__ = ["BURST_S", "GAP_S", "ScriptedTurnModel", "ScriptedVad", "SoakResult", "SoakSample",
           "bursts", "chunks", "drive", "normalize_text", "of_type", "silence", "soak", "tone",
           "word_error_rate", "word_errors"]

_T = TypeVar("_T")

Answer = Callable[[TranscribeRequest], EngineOutput | BaseException | None]
"""Plays the engine in :func:`drive`: an EngineOutput answers a request, an exception fails
it, None leaves it unanswered."""


def silence(seconds: float) -> NDArray[np.float32]:
    """``seconds`` of digital silence at 16 kHz."""
    return np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.float32)


def tone(seconds: float, freq_hz: float = 220.0, amplitude: float = 0.3) -> NDArray[np.float32]:
    """A sine tone at 16 kHz, standing in for speech where a scripted VAD decides."""
    t = np.arange(int(round(seconds * SAMPLE_RATE)), dtype=np.float64) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def chunks(audio: NDArray[np.float32], chunk_samples: int) -> list[NDArray[np.float32]]:
    """Split ``audio`` into consecutive chunks of ``chunk_samples`` (the last may be short)."""
    return [audio[i:i + chunk_samples] for i in range(0, len(audio), chunk_samples)]


def drive(pipeline: SpeechPipeline, audio: NDArray[np.float32], *, chunk_samples: int = 320,
          answer: Answer | None = None, flush: bool = False) -> list[Output]:
    """Feed ``audio`` to ``pipeline`` in chunks, as a source would; return all it put out.

    Args:
        pipeline: the pipeline under test (no thread is started; all runs on this one).
        audio: float32 mono samples at 16 kHz.
        chunk_samples: samples per :meth:`~harken.core.pipeline.SpeechPipeline.feed` call
            (320 = 20 ms, a typical sound card block).
        answer: an instant engine, called with each request as it goes out; what the
            pipeline makes of the answer follows the request in the returned list.
        flush: end the stream after the audio, as the end of a file does.

    Returns:
        Events, requests and the rest of the pipeline's outputs, in the order they came.
    """
    out: list[Output] = []

    def take(outputs: Iterable[Output]) -> None:
        for item in outputs:
            out.append(item)
            if answer is not None and isinstance(item, TranscribeRequest):
                reply = answer(item)
                if isinstance(reply, BaseException):
                    take(pipeline.on_failed(item, reply))
                elif reply is not None:
                    take(pipeline.on_result(item, reply))

    for chunk in chunks(audio, chunk_samples):
        take(pipeline.feed(chunk))
    if flush:
        take(pipeline.flush())
    return out


def of_type(items: Iterable[object], cls: type[_T]) -> list[_T]:
    """The items that are ``cls`` instances, in order: ``of_type(out, FinalTranscript)``."""
    return [item for item in items if isinstance(item, cls)]


class ScriptedVad:
    """A VAD that calls a frame speech when it overlaps a scripted interval.

    Args:
        intervals: (start, end) pairs in seconds of stream time that are speech.
    """

    def __init__(self, intervals: Sequence[tuple[float, float]]) -> None:
        self._intervals = [(int(a * SAMPLE_RATE), int(b * SAMPLE_RATE)) for a, b in intervals]
        self._position = 0
        self.frames_seen = 0

    def load(self) -> None:
        """Nothing to load."""

    def is_speech(self, frame: NDArray[np.float32]) -> bool:
        """True when the frame's middle sample lies in a scripted interval."""
        mid = self._position + len(frame) // 2
        self._position += len(frame)
        self.frames_seen += 1
        return any(a <= mid < b for a, b in self._intervals)

    def reset(self) -> None:
        """Restart the stream clock."""
        self._position = 0

    def close(self) -> None:
        """Nothing to release."""


BURST_S = 1.5
"""Length of each tone burst of :func:`bursts`, in seconds (one utterance each)."""
GAP_S = 1.5
"""Silence after each burst, in seconds: longer than any post-speech silence setting."""


def bursts(minute: int = 0) -> tuple[NDArray[np.float32], int]:
    """60 s of alternating tone bursts and silence, and how many bursts it holds (20).

    Args:
        minute: which minute of a longer stream this is; the pitch changes with it
            (200 + 10 * (minute % 20) Hz), so consecutive minutes differ.
    """
    cycle = np.concatenate([tone(BURST_S, 200.0 + 10 * (minute % 20)), silence(GAP_S)])
    reps = int(round(60 / (BURST_S + GAP_S)))
    return np.tile(cycle, reps), reps


@dataclass(frozen=True)
class SoakSample:
    """The process measured after one more minute of audio was fed."""

    audio_minutes: float
    rss_mb: float
    """Resident memory of this process, in MiB."""
    threads: int
    fds: int
    """Open file descriptors of this process."""
    children: int
    """Live (not zombie) child processes, recursively."""
    finals: int
    """Finals the recorder had delivered so far."""


@dataclass
class SoakResult:
    """What :func:`soak` measured."""

    minutes: int
    wall_s: float
    utterances: int
    """Utterances in the audio fed (as the audio function counted them)."""
    finals_by_id: dict[int, int]
    """Finals received per utterance id (1 for each, when nothing was lost or repeated)."""
    samples: list[SoakSample] = field(default_factory=list)
    """One before the first minute, then one after each minute."""
    errors: list[BaseException] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Utterances with no final (ids run from 1)."""
        return sum(1 for i in range(1, self.utterances + 1) if i not in self.finals_by_id)

    @property
    def duplicated(self) -> int:
        """Extra finals for utterances that got more than one."""
        return sum(n - 1 for n in self.finals_by_id.values() if n > 1)

    @property
    def speed(self) -> float:
        """Audio seconds per wall-clock second (x real time)."""
        return self.minutes * 60 / self.wall_s

    def rss_slope_mb_per_hour(self) -> float:
        """Least-squares slope of RSS in MiB per hour of audio, first sample excluded."""
        points = self.samples[1:] if len(self.samples) > 2 else self.samples
        if len(points) < 2:
            return 0.0
        x = np.array([s.audio_minutes / 60 for s in points])
        y = np.array([s.rss_mb for s in points])
        return float(np.polyfit(x, y, 1)[0])


def soak(minutes: int, *, audio: Callable[[int], tuple[NDArray[np.float32], int]] = bursts,
         chunk_s: float = 0.1, on_sample: Callable[[SoakSample], object] | None = None,
         **settings: Any) -> SoakResult:
    """Stream ``minutes`` of audio through a push :class:`~harken.recorder.Recorder` as fast
    as it takes it, measuring the process after every minute.

    Finals are taken as they arrive (``next_final(timeout=0)`` after each minute), as a user
    would, so none pile up; at the end the recorder is flushed and closed.

    Args:
        minutes: whole minutes of audio (at least 1).
        audio: ``audio(minute) -> (samples at 16 kHz, utterances in them)``; tone bursts by
            default, which the ``"energy"`` VAD segments.
        chunk_s: seconds of audio per ``feed_audio`` call.
        on_sample: called with each :class:`SoakSample` as it is measured.
        **settings: Recorder settings, e.g. ``engine="scripted", vad="energy"``.

    Raises:
        ImportError: psutil is not installed.
    """
    import psutil

    from .events import FinalTranscript
    from .recorder import Recorder

    proc = psutil.Process()
    result = SoakResult(minutes=max(1, int(minutes)), wall_s=0.0, utterances=0,
                        finals_by_id={})
    lock = threading.Lock()

    def on_event(event: object) -> None:
        if isinstance(event, FinalTranscript):
            with lock:
                got = result.finals_by_id
                got[event.utterance_id] = got.get(event.utterance_id, 0) + 1

    def measure(audio_minutes: float, finals: int) -> SoakSample:
        children = [c for c in proc.children(recursive=True)
                    if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        sample = SoakSample(audio_minutes, proc.memory_info().rss / 2**20,
                            threading.active_count(), proc.num_fds(), len(children), finals)
        result.samples.append(sample)
        if on_sample is not None:
            on_sample(sample)
        return sample

    step = max(1, int(chunk_s * SAMPLE_RATE))
    started = time.monotonic()
    with Recorder(source="push", on_event=on_event, on_error=result.errors.append,
                  **settings) as rec:
        measure(0.0, 0)
        for minute in range(result.minutes):
            samples, count = audio(minute)
            result.utterances += count
            for i in range(0, len(samples), step):
                rec.feed_audio(samples[i:i + step])
            while True:
                try:
                    rec.next_final(timeout=0)
                except TimeoutError:
                    break
            measure(minute + 1.0, rec.finals)
        rec.flush(120)
    result.wall_s = time.monotonic() - started
    return result


class ScriptedTurnModel:
    """A turn model that answers scripted P(complete) values, one per call.

    Args:
        answers: the answers in call order; the last one repeats. A single number is
            every answer.

    Attributes:
        heard: the number of samples of each call's audio, in call order.
    """

    def __init__(self, answers: float | Sequence[float]) -> None:
        self._answers = [float(answers)] if isinstance(answers, (int, float)) else \
            [float(a) for a in answers]
        if not self._answers:
            raise ValueError("ScriptedTurnModel needs at least one answer")
        self.heard: list[int] = []

    def load(self) -> None:
        """Nothing to load."""

    def predict(self, audio: NDArray[np.float32]) -> float:
        """The next scripted answer (``audio`` is only measured)."""
        self.heard.append(len(audio))
        return self._answers[min(len(self.heard), len(self._answers)) - 1]

    def close(self) -> None:
        """Nothing to release."""


def normalize_text(text: str) -> list[str]:
    """Lower-case words without punctuation, for word error rates."""
    import re

    return re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """Word-level edit distance and reference length, after :func:`normalize_text`."""
    from .text.metrics import edit_distance

    ref = normalize_text(reference)
    return edit_distance(normalize_text(hypothesis), ref), len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (0.0 = identical)."""
    errors, n = word_errors(reference, hypothesis)
    return errors / max(1, n)
