"""The phrase wake word backend: any phrase, no training (pure text matching, no I/O).

It cannot run per frame. While the recorder waits for a wake word, each VAD-bounded
utterance that passes a cheap first stage (:meth:`PhraseWakeWord.plausible`: its length and
its voiced time) is transcribed by the engine already loaded, and :meth:`PhraseWakeWord.match`
decides whether the text starts with one of the wake phrases. Matching is fuzzy and
normalised: case, punctuation and spaces are ignored ("hey harken" ~ "Hey, Harken!" ~
"heyharken"), and a few letters may differ ("hay harken", "Hey Hawken"), within a budget set
by ``sensitivity``. Text after the phrase is returned as the remainder, so "Jarvis, what time
is it?" is a wake word plus a command in one breath.

Runs on the recorder's pipeline thread; pure functions and one immutable object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..engine.base import DecodeHints
from ..errors import ConfigError
from ..units import SAMPLE_RATE
from .base import PhraseMatch
from .names import normalize

__all__ = ["PhraseMatch", "PhraseWakeWord", "normalize", "edit_distance"]

_FILLERS = frozenset({"uh", "um", "oh", "ok", "okay", "so", "and", "well", "ah", "er", "hmm"})
"""Words that may come before the phrase without spoiling the match ("Okay, hey harken")."""

_WORD = re.compile(r"\S+")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning ``a`` into ``b``."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class PhraseWakeWord:
    """Wake phrases matched against the text of short utterances (a
    :class:`~harken.wake.base.PhraseMatcher`).

    Args:
        phrases: the wake phrases, e.g. ``("hey harken",)``; any words in any language the
            engine writes in Latin letters or digits.
        sensitivity: 0..1; above 0.5 the phrases are also given to the engine as a prompt
            (more detections, more false activations, see :meth:`request_hints`); the
            share of a phrase's letters that may differ is
            ``0.3 * sensitivity``, rounded (0.5 lets "jarvis" and "hey harken" differ in 1
            letter, 1.0 in 2 and 3). 0 demands an exact (normalised) match. Measured on
            espeak-ng speech (benchmarks/wake.py), 2 letters let "Hi, Harken" (Whisper's
            text for "a hawk circled", pulled towards the hotword) pass for "hey harken".
        min_speech_s: shortest voiced time, in seconds, worth transcribing as a wake check.
        max_utterance_s: longest utterance, in seconds, sent as a wake check (a wake phrase
            plus a short command fits; longer speech while waiting is ignored).
    """

    phrases: tuple[str, ...]
    sensitivity: float = 0.5
    min_speech_s: float = 0.3
    max_utterance_s: float = 6.0

    def __post_init__(self) -> None:
        if isinstance(self.phrases, str) or not self.phrases:
            raise ConfigError("phrases must be a non-empty tuple of wake phrases, "
                              f"got {self.phrases!r}")
        for phrase in self.phrases:
            if not isinstance(phrase, str) or len(normalize(phrase)) < 2:
                raise ConfigError(
                    f"wake phrase {phrase!r} has fewer than 2 letters or digits; "
                    "write a word or phrase such as 'jarvis' or 'hey harken'")
        if not (isinstance(self.sensitivity, (int, float)) and 0.0 <= self.sensitivity <= 1.0):
            raise ConfigError(f"sensitivity must be a number from 0 to 1, got "
                              f"{self.sensitivity!r}")
        if not (0.0 < self.min_speech_s < self.max_utterance_s <= 30.0):
            raise ConfigError(
                "need 0 < min_speech_s < max_utterance_s <= 30 (seconds), got "
                f"{self.min_speech_s!r} and {self.max_utterance_s!r}")

    def max_edits(self, phrase: str) -> int:
        """Letters of ``phrase`` that may differ in a match, from the sensitivity."""
        return int(len(normalize(phrase)) * 0.3 * self.sensitivity + 0.5)

    def plausible(self, utterance_samples: int, speech_samples: int) -> bool:
        """The cheap first stage: is this utterance worth a wake check?

        Args:
            utterance_samples: length of the utterance audio, in samples at 16 kHz.
            speech_samples: how much of it the VAD called speech, in samples at 16 kHz.
        """
        return (speech_samples >= self.min_speech_s * SAMPLE_RATE
                and utterance_samples <= self.max_utterance_s * SAMPLE_RATE)

    def request_hints(self) -> DecodeHints:
        """Decode hints for a wake check: the phrases as ``hotwords``, and above
        sensitivity 0.5 also as the ``initial_prompt``.

        Whisper spells an unusual name ("Harken", "Jarvis") far more reliably when told to
        expect it; measured with tiny.en on espeak-ng speech (benchmarks/wake.py), without
        the hint it wrote "Hey, how are you?" for "hey harken" and "job is" for "jarvis".
        Hotwords alone found 14 of 16 clean "jarvis" clips and no false activation in 5
        minutes of other speech; with the prompt too, 16 of 16, but "jars of honey" became
        "Jarvis and Bernie": one false activation.
        """
        titles = [p.strip().title() for p in self.phrases]
        prompt = ". ".join(titles) + "." if self.sensitivity > 0.5 else None
        return DecodeHints(hotwords=", ".join(titles), initial_prompt=prompt)

    def match(self, text: str) -> PhraseMatch | None:
        """Find a wake phrase at the start of ``text`` (a filler word may precede it).

        Returns:
            The closest match within the letter budget, or None.
        """
        tokens = [(m.start(), m.end(), normalize(m.group())) for m in _WORD.finditer(text)]
        tokens = [t for t in tokens if t[2]]
        best: PhraseMatch | None = None
        for skip in (0, 1):
            if skip and (not tokens or tokens[0][2] not in _FILLERS):
                break
            for phrase in self.phrases:
                target = normalize(phrase)
                budget = self.max_edits(phrase)
                joined = ""
                for n in range(skip, len(tokens)):
                    joined += tokens[n][2]
                    if len(joined) > len(target) + budget:
                        break
                    distance = edit_distance(joined, target)
                    if distance <= budget and (best is None or distance < best.distance):
                        rest = text[tokens[n][1]:]
                        best = PhraseMatch(phrase, n + 1, _strip_lead(rest), distance)
        return best


def _strip_lead(text: str) -> str:
    """Drop the punctuation and spaces between the phrase and the words after it."""
    rest = re.sub(r"^[\s\W_]+", "", text)
    return rest[:1].upper() + rest[1:] if rest else ""
