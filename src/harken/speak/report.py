"""What a speaker delivered: per-sentence reports, the whole report, and the speech handle.

A sentence's audio counts as delivered once the sink has taken it (the callback returned,
the iterator handed it out, the sound card's buffer or the WAV file got it). Within a
sentence cut short by ``stop()``, the text delivered is estimated from the share of its
samples delivered, rounded to whole words.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["SentenceReport", "SpeechHandle", "SpeechReport"]


@dataclass(frozen=True)
class SentenceReport:
    """One sentence (or clause) and how much of it reached the sink."""

    text: str
    """The sentence as it was synthesised (after cleaning)."""
    delivered_samples: int
    """Samples of it given to the sink, at the engine's rate."""
    total_samples: int | None
    """Its length in samples at the engine's rate; None when synthesis did not finish."""
    sample_rate: int
    """The engine's rate in Hz."""

    @property
    def complete(self) -> bool:
        """True when all of the sentence reached the sink."""
        return self.total_samples is not None and self.delivered_samples >= self.total_samples

    @property
    def fraction(self) -> float:
        """The share of the sentence delivered, 0.0 to 1.0 (0.0 when nothing was made)."""
        if self.complete:
            return 1.0
        total = max(self.total_samples or 0, self.delivered_samples)
        return self.delivered_samples / total if total else 0.0

    @property
    def delivered_text(self) -> str:
        """The words the listener got: all of them, or the share given by :attr:`fraction`."""
        if self.complete:
            return self.text
        words = self.text.split()
        return " ".join(words[:int(len(words) * self.fraction + 0.5)])

    @property
    def delivered_s(self) -> float:
        """Seconds of the sentence's audio delivered."""
        return self.delivered_samples / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True)
class SpeechReport:
    """What one ``speak()`` call delivered."""

    sentences: tuple[SentenceReport, ...]
    """Every sentence cut from the text, in order (those never started deliver 0 samples)."""
    interrupted: bool = False
    """True when ``stop()`` (or ``close()``) cut it short."""
    error: BaseException | None = None
    """Why it ended early, when synthesis or the sink failed."""

    @property
    def text(self) -> str:
        """All the text that was to be spoken (the sentences joined by spaces)."""
        return " ".join(s.text for s in self.sentences)

    @property
    def delivered_text(self) -> str:
        """The text that reached the sink (see :attr:`SentenceReport.delivered_text`)."""
        return " ".join(t for t in (s.delivered_text for s in self.sentences) if t)

    @property
    def delivered_s(self) -> float:
        """Seconds of audio delivered."""
        return sum(s.delivered_s for s in self.sentences)

    @property
    def complete(self) -> bool:
        """True when every sentence was delivered whole."""
        return not self.interrupted and self.error is None and all(
            s.complete for s in self.sentences)


class SpeechHandle:
    """The result of ``Speaker.speak()``: wait for it, or look at what was delivered so far.

    Created by the speaker; thread-safe.
    """

    def __init__(self) -> None:
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._report = SpeechReport(())

    @property
    def done(self) -> bool:
        """True once everything was delivered, or it was stopped or failed."""
        return self._done.is_set()

    @property
    def report(self) -> SpeechReport:
        """What has been delivered so far (final once :attr:`done`)."""
        with self._lock:
            return self._report

    def wait(self, timeout: float | None = None) -> SpeechReport:
        """Block until done; return the report.

        Raises:
            TimeoutError: not done within ``timeout`` seconds.
            HarkenError: synthesis failed for good (e.g. :class:`~harken.errors.EngineError`
                or :class:`~harken.errors.WorkerCrashed`), or the sink raised.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"the speech was not finished within {timeout} s")
        report = self.report
        if report.error is not None:
            raise report.error
        return report

    def _update(self, report: SpeechReport, done: bool = False) -> None:
        with self._lock:
            self._report = report
        if done:
            self._done.set()
