"""What the pure pipeline hands back, and the one dispatch of it to a shell's handlers.

:class:`~harken.core.pipeline.SpeechPipeline` returns a list of :data:`Output`: events for
the user, requests for the engine, :class:`CancelRequest` (a stale speculative final),
:class:`ConfirmRequest` (a speculative final that stands) and :class:`FinalFailed` (an
utterance that could not be transcribed). Every shell (the
recorder's pipeline loop, a server session) routes them the same way: :func:`route_outputs`
is that one ``isinstance`` ladder, and a shell says what each kind means to it by
implementing :class:`OutputHandler`. :func:`final_transcript` turns an engine answer into a
:class:`~harken.events.FinalTranscript` in stream time; the pipeline and the wake router both
use it.

Pure: no I/O, no threads; it runs on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..engine.base import EngineOutput, TranscribeRequest
from ..events import Event, FinalTranscript, Word
from ..units import SAMPLE_RATE

__all__ = ["CancelRequest", "ConfirmRequest", "FinalFailed", "Output", "OutputHandler",
           "final_transcript", "route_outputs", "seconds"]


@dataclass(frozen=True)
class CancelRequest:
    """The engine may drop this request: its answer is no longer wanted."""

    request_id: int


@dataclass(frozen=True)
class ConfirmRequest:
    """This speculative final stands now (the silence lasted, or it became a piece of the
    utterance): an engine that held it back may schedule it like any final.
    """

    request_id: int


@dataclass(frozen=True, eq=False)
class FinalFailed:
    """The final of ``request`` could not be produced; ``error`` says why."""

    request: TranscribeRequest
    error: BaseException


Output = Event | TranscribeRequest | CancelRequest | ConfirmRequest | FinalFailed


class OutputHandler(Protocol):
    """What a shell does with each kind of pipeline output."""

    def on_request(self, request: TranscribeRequest) -> None:
        """Send ``request`` to the engine."""

    def on_cancel(self, cancel: CancelRequest) -> None:
        """Withdraw a request speech made stale (if the engine still has it)."""

    def on_confirm(self, confirm: ConfirmRequest) -> None:
        """A speculative final stands: the engine need not hold it back any more."""

    def on_final_failed(self, failed: FinalFailed) -> None:
        """An utterance could not be transcribed (the engine gave up on it)."""

    def on_event(self, event: Event) -> None:
        """Deliver an event."""


def route_outputs(outputs: Iterable[Output], handler: OutputHandler) -> None:
    """Hand each output, in order, to the ``handler`` method for its kind."""
    for out in outputs:
        if isinstance(out, TranscribeRequest):
            handler.on_request(out)
        elif isinstance(out, CancelRequest):
            handler.on_cancel(out)
        elif isinstance(out, ConfirmRequest):
            handler.on_confirm(out)
        elif isinstance(out, FinalFailed):
            handler.on_final_failed(out)
        else:
            handler.on_event(out)


def seconds(samples: int) -> float:
    """A 16 kHz stream position (or length) in samples, in seconds."""
    return samples / SAMPLE_RATE


def final_transcript(request: TranscribeRequest, output: EngineOutput, *,
                     compute_seconds: float, attempts: int, text: str | None = None,
                     skip_words: int = 0) -> FinalTranscript:
    """The final transcript of ``request`` from the engine's ``output``, in stream seconds.

    Args:
        request: the request that was answered; its samples place the words in the stream.
        output: the engine's answer (word times relative to the request's audio).
        compute_seconds: engine time spent on it, in seconds.
        attempts: how often the request was sent.
        text: the text to report instead of the engine's (a command after a wake phrase).
        skip_words: leading words of ``output`` that are not part of ``text`` (the wake
            phrase); the final then starts where the first kept word starts.
    """
    offset = seconds(request.start_sample)
    words = tuple(Word(round(offset + w.start, 3), round(offset + w.end, 3), w.text,
                       w.probability) for w in output.words[skip_words:])
    return FinalTranscript(
        utterance_id=request.utterance_id,
        text=output.text.strip() if text is None else text,
        start=words[0].start if words and skip_words else offset,
        end=seconds(request.end_sample),
        language=output.language,
        language_probability=output.language_probability,
        words=words,
        compute_seconds=compute_seconds,
        attempts=attempts,
        split=request.split,
    )
