"""One dispatch of the pipeline's outputs: the four kinds, each to its own handler method.

:class:`~harken.core.pipeline.SpeechPipeline` returns a list of outputs: events for the user,
requests for the engine, cancellations of stale speculative finals and finals that could not
be transcribed. Every shell (the recorder's pipeline loop, a server session) routes them the
same way; :func:`route_outputs` is that one ``isinstance`` ladder, and a shell says what each
kind means to it by implementing :class:`OutputHandler`.

Pure: no I/O, no threads; it runs on the caller's thread.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ..engine.base import TranscribeRequest
from ..events import Event
from .pipeline import CancelRequest, FinalFailed, Output

__all__ = ["OutputHandler", "route_outputs"]


class OutputHandler(Protocol):
    """What a shell does with each kind of pipeline output."""

    def on_request(self, request: TranscribeRequest) -> None:
        """Send ``request`` to the engine."""

    def on_cancel(self, cancel: CancelRequest) -> None:
        """Withdraw a request speech made stale (if the engine still has it)."""

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
        elif isinstance(out, FinalFailed):
            handler.on_final_failed(out)
        else:
            handler.on_event(out)
