"""The audio source protocol.

A source delivers float32 mono 16 kHz samples to an :class:`AudioSink`; it converts and
resamples at its edge (see :mod:`harken.audio.convert`).
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..errors import AudioSourceError, HarkenError

__all__ = ["AudioSink", "AudioSource", "report_failure"]


class AudioSink(Protocol):
    """Where a source puts its audio. Implemented by the recorder."""

    def write(self, samples: NDArray[np.float32]) -> None:
        """Take float32 mono 16 kHz samples.

        May block for backpressure when the source is not real-time (``realtime`` False)
        or is a push source; never blocks for a microphone. Raises AudioSourceError when
        the backlog overflows.
        """

    def end(self) -> None:
        """The source has no more audio (end of file)."""

    def error(self, exc: BaseException) -> None:
        """The source failed in a background thread."""


@runtime_checkable
class AudioSource(Protocol):
    """A producer of audio: microphone, file, or pushed chunks."""

    realtime: bool
    """True when audio arrives at the pace it is spoken (microphone, push)."""

    def start(self, sink: AudioSink) -> None:
        """Begin delivering audio to ``sink`` (opens devices, starts reader threads)."""

    def close(self) -> None:
        """Stop delivering audio and release everything; idempotent, bounded in time."""


def report_failure(sink: AudioSink, exc: Exception, *, stopping: bool, what: str,
                   logger: logging.Logger) -> None:
    """Hand a source thread's exception to the sink, so it is never lost in the thread.

    Failures after close() (``stopping``) are only logged. Foreign exceptions are wrapped in
    AudioSourceError whose message starts with ``what`` (e.g. "recording failed").
    """
    if stopping:
        logger.debug("%s after close(): %r", what, exc)
        return
    error = exc if isinstance(exc, HarkenError) else AudioSourceError(
        f"{what}: {type(exc).__name__}: {exc}")
    if error is not exc:
        error.__cause__ = exc
    logger.debug("%s: %r", what, error)
    sink.error(error)
