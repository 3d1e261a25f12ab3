"""End of turn: when to end an utterance once the speaker falls silent (pure: no I/O, no
clock, no threads).

With ``turn_detection="fixed"`` an utterance ends after ``post_speech_silence_ms`` of
silence, whoever is speaking and whatever they said. With ``"smart"`` the silence needed
depends on what is known at that moment, all counted in samples of silence since the voice
faded:

- at ``min_silence_ms`` the turn model (Smart Turn, :mod:`harken.turn`) hears the utterance
  and gives P(complete), once per pause;
- the words: the speculative final's transcript of exactly this audio (with smart turns
  the early final is cut at the first frame the VAD calls silence, :data:`SMART_TAIL_MS`,
  so its words come back ~100 ms sooner than with the segmenter's usual 128 ms tail).
  While it is being transcribed, the turn waits for it (up to ``max_silence_ms``): the
  final cannot be shown before those words anyway, so waiting costs no latency, and they
  may say the speaker is mid-thought. Without it, the latest partial text;
- the text *sounds unfinished* when it ends in a comma, an ellipsis or a dash, or in a
  conjunction, filler, article, preposition or copula ("and", "um", "the", "for", "is", ...;
  a copula after a pronoun does end a sentence: "than he was.");
  then the utterance waits ``max_silence_ms``, whatever the model says (Smart Turn calls
  many sentences cut at a comma "complete");
- P(complete) below ``low`` (the model hears a speaker mid-thought): wait ``max_silence_ms``;
- the speculative final's text ends a sentence (".", "?", "!") and P(complete) is at or
  above ``words`` (with the default eagerness: the model does not hear a speaker
  mid-thought): end now (at ``min_silence_ms`` at the earliest). With early finals off,
  P(complete) at or above ``threshold`` and the partial text (or the model alone) decide;
- anything else: the normal ``post_speech_silence_ms``.

So smart turns end an utterance sooner only when the words end a sentence and the audio
model does not object, and later when either hears a speaker who has not finished. The
decisions are a pure function of the audio, the texts and where in the stream each text
arrived: the same inputs give the same decisions (tests drive this with a scripted model).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..config import VadConfig
from ..turn.base import TurnModel
from ..units import ms_to_samples

__all__ = ["EAGERNESS", "SMART_TAIL_MS", "TurnPolicy", "TurnSettings", "ends_sentence",
           "sounds_unfinished", "turn_silence"]

EAGERNESS: dict[str, tuple[float, float, float]] = {
    "low": (0.9, 0.3, 0.7),
    "medium": (0.7, 0.15, 0.15),
    "auto": (0.7, 0.15, 0.15),
    "high": (0.5, 0.05, 0.05),
}
"""Eagerness -> (threshold, low, words) on P(complete) (see :class:`TurnSettings`): "low"
ends early only when the model agrees that the speaker finished and waits longer more
often; "medium" ends as soon as the words end a sentence unless the model hears a speaker
mid-thought; "high" ends sooner still. "auto" is "medium".

Why "medium" lets the words decide: at 200 ms of silence Smart Turn scores many finished
sentences between 0.15 and 0.7 (its score swings with every 50 ms of silence on espeak
speech), and sentence-ending words after such a score were not mid-thought in
``benchmarks/turns.py``: the early final's words alone ended finished turns 170 ms sooner
(E2F p50 0.32 s against 0.48 s, modelled engine) with the same utterances cut."""

SMART_TAIL_MS = 32
"""With smart turns the early final is cut at the first frame the VAD calls silence (the
segmenter's tail, in ms): its words decide the turn and the final, so they are asked for
~100 ms sooner than with the segmenter's usual tail. The VAD itself lags the voice by
30-200 ms, so the audio still ends in a little quiet."""

_TRAILING = frozenset("""
and but or nor so because cause since although though unless until while whereas if then
than that which who whom whose where when um uh er erm ah hmm mm like the a an my your his
her its our their this these those to of for with in on at by from into onto about around
as via per towards toward across through between among against without within under over
near is are was were be been am will would shall should can could may might must do does
did have has had i we you they he she it it's i'm i'd i'll we're you're gonna wanna
""".split())
"""Words that rarely end a finished turn. A question mark after them does not count (Whisper
writes "Can you send the report to?" for a sentence cut after "to"): the price is waiting
longer after "Who is it for?", never a cut."""

_END_WORDS = frozenset({"so", "like", "too", "then", "in", "on", "it", "that", "this", "up",
                        "over", "do", "did", "can", "will", "you"})
"""Words of _TRAILING that often end sentences ("I think so.", "Yes, I do.", "Thank you."):
unfinished only without a sentence end after them. "is", "was", "at", "around" and the
like are not among them: "The password is." waits, at the price of "Here it is."."""

_COPULAS = frozenset({"is", "was", "are", "were", "am"})
_PRONOUNS = frozenset({"i", "you", "he", "she", "it", "we", "they", "there", "that", "who",
                       "what", "where"})
"""A copula after a pronoun ends a sentence ("than he was.", "Here it is.", "Yes, I am."),
where after a noun it rarely does ("The password is.")."""

_WORD = re.compile(r"[a-z']+")


def _last_words(text: str) -> list[str]:
    """The last two words of ``text``, lower case (fewer when it has fewer)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))[-2:]


def ends_sentence(text: str) -> bool:
    """True when ``text`` ends with ".", "?" or "!" (not an ellipsis)."""
    t = text.rstrip().rstrip("\"')]\u201d")
    return bool(t) and t[-1] in ".?!" and not t.endswith("..")


def sounds_unfinished(text: str) -> bool:
    """True when ``text`` ends mid-thought: a comma, an ellipsis, a dash, or a word such as
    "and", "um", "the" or "for" (see the module docstring).
    """
    t = text.rstrip()
    if not t:
        return False
    if t.endswith((",", "...", "\u2026", "-", "\u2014", ":", ";")):
        return True
    words = _last_words(t)
    word = words[-1] if words else ""
    if word not in _TRAILING:
        return False
    if not ends_sentence(t):
        return True
    return word not in _END_WORDS and not (
        word in _COPULAS and len(words) == 2 and words[0] in _PRONOUNS)


@dataclass(frozen=True)
class TurnSettings:
    """The smart end of turn's silences, in samples at 16 kHz, and P(complete) cut-offs."""

    min_silence: int
    """The model is asked, and a turn may end, once the silence reaches this."""
    normal_silence: int
    """The silence that ends an utterance when nothing says otherwise."""
    max_silence: int
    """The longest wait, for a speaker who sounds mid-thought."""
    threshold: float
    """P(complete) at or above which the audio alone says "finished" (it ends the turn with
    no early final's words, see :func:`turn_silence`)."""
    low: float
    """P(complete) below which the audio says "not finished"."""
    words: float = 0.15
    """P(complete) at or above which the early final's words, when they end a sentence,
    end the turn at once."""

    @classmethod
    def from_config(cls, config: VadConfig) -> TurnSettings:
        """The settings ``config`` asks for (its turn_* and *_silence_ms fields)."""
        threshold, low, words = EAGERNESS[config.turn_eagerness]
        return cls(ms_to_samples(config.min_silence_ms),
                   ms_to_samples(config.post_speech_silence_ms),
                   ms_to_samples(config.max_silence_ms), threshold, low, words)


def turn_silence(settings: TurnSettings, p_complete: float | None, *,
                 final_text: str | None = None, partial_text: str | None = None,
                 pending: bool = False, early_final: bool = True) -> int:
    """Return the silence (samples) after which the turn ends, given what is known now.

    Args:
        settings: the silences and cut-offs.
        p_complete: the model's P(complete) for this pause; None before it was asked.
        final_text: the speculative final's transcript of this pause's audio, once back.
        partial_text: the latest partial transcript of the utterance.
        pending: the speculative final of this pause is being transcribed: its words will
            decide (the final cannot be shown before them, so waiting costs no latency).
        early_final: speculative finals are on, so the words of a pause are to be expected
            (without them the model and the partial text decide).
    """
    if pending:
        return settings.max_silence
    text = final_text if final_text is not None else partial_text
    if text is not None and sounds_unfinished(text):
        return settings.max_silence
    if p_complete is None:
        return settings.normal_silence
    if p_complete < settings.low:
        return settings.max_silence
    if final_text is not None:  # the words of exactly this audio
        finished = p_complete >= settings.words and ends_sentence(final_text)
    else:  # no final words: the model and the partial text, unless final words may come
        finished = p_complete >= settings.threshold and not early_final and (
            partial_text is None or ends_sentence(partial_text))
    return settings.min_silence if finished else settings.normal_silence


class TurnPolicy:
    """Decides, pause by pause, when an utterance of one stream ends. Not thread-safe.

    Args:
        settings: the silences and cut-offs.
        model: a loaded turn model; asked once per pause, at ``min_silence``.
    """

    def __init__(self, settings: TurnSettings, model: TurnModel) -> None:
        self.settings = settings
        self._model = model
        self._p: float | None = None
        self._partial: str | None = None
        self._final: str | None = None

    @property
    def p_complete(self) -> float | None:
        """The model's answer for the current pause (None before it was asked)."""
        return self._p

    def new_utterance(self) -> None:
        """An utterance began: forget everything about the last one."""
        self.speech()
        self._partial = None

    def speech(self) -> None:
        """The speaker is talking: the last pause's answer and final text are void."""
        self._p = None
        self._final = None

    def heard_partial(self, text: str) -> None:
        """A partial transcript of the open utterance came back."""
        self._partial = text

    def heard_final(self, text: str) -> None:
        """The speculative final's transcript of the audio up to this pause came back."""
        self._final = text

    def should_end(self, silence: int, audio: Callable[[], NDArray[np.float32]], *,
                   pending: bool, early_final: bool) -> bool:
        """Whether the turn ends now, after ``silence`` samples since the voice faded.

        Args:
            silence: samples of silence so far in this pause (0 while speaking).
            audio: returns the utterance's audio so far; called once per pause, when the
                silence first reaches ``min_silence`` and the model is asked.
            pending: the speculative final of this pause is being transcribed.
            early_final: speculative finals are on (see :func:`turn_silence`).
        """
        s = self.settings
        if silence <= 0 or silence < s.min_silence:
            return False
        if self._p is None:
            self._p = float(self._model.predict(audio()))
        return silence >= turn_silence(s, self._p, final_text=self._final,
                                       partial_text=self._partial, pending=pending,
                                       early_final=early_final)
