"""Append-only transcript text (pure): deltas that always add up to the final transcript.

A client that renders live text by appending what it is sent (the Realtime API's
``...input_audio_transcription.delta`` events, the ``append`` field of harken's own
protocol) is only right if everything it was sent is the start of the final transcript.
Stable words of a partial pass do not promise that: the final pass re-transcribes the whole
utterance and may rewrite them ("Letters of your parties first" becomes "Letters of your
party's first name."). :class:`TextLedger` therefore sends early only text that the final
can no longer change:

- the finals already in (earlier utterances of a multi-utterance item, earlier pieces of an
  utterance split at its maximum length): they are the start of the transcript as they are;
- with ``early_stable=True``, also the stable words of the live partials. Only for a
  pipeline that gives the final pass its stable text as the start of the transcript
  (:attr:`RealtimeConfig.stable_prefix <harken.config.RealtimeConfig.stable_prefix>`), so
  the final continues from those words instead of contradicting them.

Everything else is held until its final arrives, and then the exact remainder goes out. If a
final still does not start with what was sent (possible only with ``early_stable``: an
engine that ignored the prefix), the transcript is rebuilt as the text sent plus the final's
words after the last sent word (:func:`reconcile`), so the deltas and the transcript still
agree.

No I/O, no clock, no threads: the server calls it on its event loop.
"""

from __future__ import annotations

import difflib
import logging
import math
from collections.abc import Sequence
from typing import Any

from ..text.units import join_units, split_units
from .stabilizer import _norm  # words compare as the stabiliser compares them

__all__ = ["TextLedger", "logprobs", "reconcile"]

logger = logging.getLogger(__name__)

def _join(*parts: str) -> str:
    return join_units(list(parts))  # no spaces between Chinese or Japanese pieces


def reconcile(sent: str, final: str) -> str:
    """The transcript that starts with ``sent`` and otherwise says what ``final`` says.

    ``final``'s words are aligned to the words of ``sent`` on their normalised form (case
    and punctuation ignored); the result is ``sent`` followed by the words of ``final``
    after the last word aligned to ``sent``. When ``final`` starts with ``sent`` this is
    ``final`` itself.
    """
    if final.startswith(sent):
        return final
    said = split_units(sent)
    words = split_units(final)
    matcher = difflib.SequenceMatcher(a=[_norm(w) for w in said], b=[_norm(w) for w in words],
                                      autojunk=False)
    end = 0  # index in ``words`` just after the last word aligned to ``sent``
    for block in matcher.get_matching_blocks():
        if block.size:
            end = block.b + block.size
    if end == 0:
        end = min(len(said), len(words))  # nothing matched: as many words are replaced
    return _join(sent, join_units(words[end:]))


class TextLedger:
    """What one item's (or utterance's) appending client has been sent, and what is left.

    Feed it the live partials' stable text and each final piece in order; each call returns
    the text to send now ("" for nothing). The texts returned concatenate to
    :attr:`transcript` once the last final is in.

    Args:
        early_stable: send the stable words of partials before their final (only when the
            final pass is given them as its prefix; see the module docstring).
    """

    def __init__(self, early_stable: bool = False) -> None:
        self._early_stable = early_stable
        self._sent = ""
        self._settled = ""
        self._stable = ""
        self._piece_pending = False

    @property
    def sent(self) -> str:
        """Everything sent so far, concatenated."""
        return self._sent

    @property
    def transcript(self) -> str:
        """The finals so far, joined with spaces; it starts with :attr:`sent`."""
        return self._settled

    def partial(self, stable: str, ready: bool = True) -> str:
        """The stable text of the open utterance's newest partial pass.

        Args:
            stable: its stable words.
            ready: False while an earlier utterance of the same item has no final yet (its
                text comes first, so nothing after it may go out).

        Returns:
            The text to send now.
        """
        if not stable.startswith(self._stable):
            # The stabiliser started afresh: the utterance was split at its maximum length
            # and the earlier piece's final, which comes first, is not in yet.
            self._piece_pending = True
        self._stable = stable
        if not self._early_stable or not ready or self._piece_pending or not stable:
            return ""
        return self._advance(_join(self._settled, stable))

    def final(self, text: str) -> str:
        """The final text of the next utterance (or piece); returns the text to send now."""
        self._stable = ""
        self._piece_pending = False
        full = _join(self._settled, text.strip())
        if not full.startswith(self._sent):
            logger.debug("a final does not continue the text sent (%r, %r): the sent text "
                         "is kept", self._sent, full)
            full = reconcile(self._sent, full)
        self._settled = full
        return self._advance(full)

    def _advance(self, text: str) -> str:
        if len(text) <= len(self._sent) or not text.startswith(self._sent):
            return ""
        delta = text[len(self._sent):]
        self._sent = text
        return delta


def logprobs(words: Sequence[Any], first: bool) -> list[dict[str, Any]]:
    """OpenAI ``logprobs`` entries for ``words`` (objects with ``text`` and ``probability``).

    One entry per word: faster-whisper's word probability is the mean of its tokens'
    probabilities, and ``logprob`` is its natural log. ``token`` is the word with the space
    that precedes it in the transcript (none before the transcript's first word, ``first``).
    """
    out: list[dict[str, Any]] = []
    for n, word in enumerate(words):
        token = word.text if first and n == 0 else " " + word.text
        p = float(word.probability)
        logprob = math.log(p) if p > 0 and math.isfinite(p) else -100.0
        out.append({"token": token, "logprob": round(max(logprob, -100.0), 6),
                    "bytes": list(token.encode("utf-8"))})
    return out
