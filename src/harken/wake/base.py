"""The two wake word backend protocols: frame detectors and phrase matchers.

A :class:`WakeWordDetector` (Porcupine, openWakeWord) hears every frame of
:data:`FRAME_SAMPLES` float32 samples at 16 kHz while the recorder waits for a wake word, and
says which keyword, if any, ended in that frame. It is called from one thread only (the
pipeline thread); ``load`` may block and runs in ``Recorder.start()``.

A :class:`PhraseMatcher` (any phrase, no training; :mod:`harken.wake.phrase`) is not a frame
detector: it judges the text of whole VAD-bounded utterances, which the loaded engine
transcribes as wake checks. The pure core and the gate depend on these protocols only, never
on a backend module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from ..units import FRAME_SAMPLES

if TYPE_CHECKING:
    from ..engine.base import DecodeHints

__all__ = ["FRAME_SAMPLES", "PhraseMatch", "PhraseMatcher", "WakeWordDetector",
           "values_per_keyword"]


def values_per_keyword(values: Sequence[float] | float, count: int, *,
                       ok: Callable[[float], bool], error: str) -> list[float]:
    """One number per keyword (a sensitivity or threshold); a single number serves them all.

    Raises:
        ConfigError: with ``error`` when the count does not match or a value fails ``ok``.
    """
    if isinstance(values, (int, float)):
        out = [float(values)] * count
    else:
        out = [float(v) for v in values]
    if len(out) != count or not all(ok(v) for v in out):
        raise ConfigError(error)
    return out


@runtime_checkable
class WakeWordDetector(Protocol):
    """Finds keywords in a stream of frames."""

    @property
    def keywords(self) -> tuple[str, ...]:
        """The keywords this detector reports, as :meth:`process` names them."""

    def load(self) -> None:
        """Load the models (may block). Raises BackendNotInstalled or ConfigError."""

    def process(self, frame: NDArray[np.float32]) -> str | None:
        """Judge one frame of exactly FRAME_SAMPLES float32 samples at 16 kHz.

        Returns:
            The keyword detected in this frame, or None.
        """

    def reset(self) -> None:
        """Forget the audio heard so far (the stream was interrupted)."""

    def close(self) -> None:
        """Release the models. Idempotent."""


@dataclass(frozen=True)
class PhraseMatch:
    """A wake phrase found at the start of a transcript."""

    phrase: str
    """The wake phrase as the user wrote it."""
    words: int
    """How many whitespace-separated words of the transcript the phrase took."""
    remainder: str
    """The text after the phrase, leading punctuation stripped ("" when none)."""
    distance: int
    """Letters that differed between the transcript and the phrase."""


@runtime_checkable
class PhraseMatcher(Protocol):
    """Finds wake phrases in the text of whole utterances (pure; no I/O, no state)."""

    def plausible(self, utterance_samples: int, speech_samples: int) -> bool:
        """The cheap first stage: is an utterance this long worth a wake check?

        Args:
            utterance_samples: length of the utterance audio, in samples at 16 kHz.
            speech_samples: how much of it the VAD called speech, in samples at 16 kHz.
        """

    def request_hints(self) -> DecodeHints:
        """Decode hints for a wake check (what helps the engine spell the phrases)."""

    def match(self, text: str) -> PhraseMatch | None:
        """The wake phrase at the start of ``text``, or None."""
