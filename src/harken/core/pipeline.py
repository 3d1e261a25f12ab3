"""The pure speech pipeline: audio in, events and engine requests out.

``SpeechPipeline`` does no I/O, reads no clock and starts no thread (bring-your-own-I/O, as
h11 does for HTTP). The recorder's pipeline thread feeds it float32 mono 16 kHz audio of any
chunk size and routes what comes back: :class:`~harken.events.Event` objects go to the user,
:class:`~harken.engine.base.TranscribeRequest` objects go to the engine, and the engine's
answers come back through :meth:`SpeechPipeline.on_result`.

Tests drive it by pushing numpy arrays, with a fake VAD and no engine at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..config import SAMPLE_RATE, VadConfig
from ..engine.base import EngineOutput, TranscribeRequest
from ..errors import AudioFormatError
from ..events import Event, FinalTranscript, SpeechEnded, SpeechStarted, TranscriptionStarted, Word
from ..vad.base import FRAME_SAMPLES, VoiceActivityDetector
from .segmenter import Segment, Segmenter, SegmenterEvent, UtteranceEnded, UtteranceStarted

__all__ = ["Output", "SpeechPipeline"]

Output = Event | TranscribeRequest


def _seconds(samples: int) -> float:
    return samples / SAMPLE_RATE


class SpeechPipeline:
    """VAD, segmentation and request bookkeeping for one audio stream.

    Args:
        vad: a loaded detector, called on every frame of FRAME_SAMPLES samples.
        config: segmentation settings.
    """

    def __init__(self, vad: VoiceActivityDetector, config: VadConfig | None = None) -> None:
        self._vad = vad
        self._segmenter = Segmenter(config or VadConfig())
        self._pending = np.zeros(0, dtype=np.float32)
        self._next_request = 1

    @property
    def position(self) -> int:
        """Samples consumed so far: the stream clock, at 16 kHz."""
        return self._segmenter.position + len(self._pending)

    @property
    def in_utterance(self) -> bool:
        """True while the person is speaking (an utterance is open)."""
        return self._segmenter.active

    def feed(self, samples: NDArray[np.float32]) -> list[Output]:
        """Take float32 mono 16 kHz samples of any length; return what happened."""
        if samples.dtype != np.float32 or samples.ndim != 1:
            raise AudioFormatError(
                f"the pipeline takes 1-D float32 samples, got {samples.dtype} with shape "
                f"{samples.shape}; convert at the source with harken.audio.convert")
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        n_frames = len(samples) // FRAME_SAMPLES
        out: list[Output] = []
        for i in range(n_frames):
            frame = samples[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
            speech = bool(self._vad.is_speech(frame))
            self._translate(self._segmenter.push(frame, speech), out)
        self._pending = samples[n_frames * FRAME_SAMPLES:].copy()
        return out

    def flush(self) -> list[Output]:
        """End of stream (or pause): close the open utterance and transcribe it."""
        out: list[Output] = []
        if len(self._pending) and self._segmenter.active:
            frame = np.zeros(FRAME_SAMPLES, dtype=np.float32)
            frame[:len(self._pending)] = self._pending
            self._translate(self._segmenter.push(frame, False), out)
        self._pending = np.zeros(0, dtype=np.float32)
        self._translate(self._segmenter.force_end(), out)
        return out

    def force_start(self) -> list[Output]:
        """Start an utterance now, whatever the VAD says; it lasts until :meth:`force_end`."""
        out: list[Output] = []
        self._translate(self._segmenter.force_start(), out)
        return out

    def force_end(self) -> list[Output]:
        """End the open utterance now and transcribe it."""
        out: list[Output] = []
        self._translate(self._segmenter.force_end(), out)
        return out

    def on_result(self, request: TranscribeRequest, output: EngineOutput,
                  compute_seconds: float = 0.0, attempts: int = 1) -> list[Event]:
        """Turn the engine's answer to ``request`` into events (times in stream seconds)."""
        offset = _seconds(request.start_sample)
        words = tuple(Word(round(offset + w.start, 3), round(offset + w.end, 3), w.text,
                           w.probability) for w in output.words)
        return [FinalTranscript(
            utterance_id=request.utterance_id,
            text=output.text.strip(),
            start=_seconds(request.start_sample),
            end=_seconds(request.end_sample),
            language=output.language,
            language_probability=output.language_probability,
            words=words,
            compute_seconds=compute_seconds,
            attempts=attempts,
            split=request.split,
        )]

    def _translate(self, events: Sequence[SegmenterEvent], out: list[Output]) -> None:
        for ev in events:
            if isinstance(ev, UtteranceStarted):
                out.append(SpeechStarted(ev.utterance_id, _seconds(ev.start_sample)))
            elif isinstance(ev, Segment):
                request = TranscribeRequest(
                    request_id=self._next_request, utterance_id=ev.utterance_id,
                    kind="final", audio=ev.audio, start_sample=ev.start_sample,
                    end_sample=ev.end_sample, split=ev.split)
                self._next_request += 1
                out.append(TranscriptionStarted(ev.utterance_id, request.duration))
                out.append(request)
            elif isinstance(ev, UtteranceEnded):
                out.append(SpeechEnded(ev.utterance_id, _seconds(ev.start_sample),
                                       _seconds(ev.end_sample), ev.discarded))
