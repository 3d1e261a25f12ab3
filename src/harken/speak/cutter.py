"""Cut text, or a stream of text pieces, into sentences and clauses to synthesise.

Pure code: no threads, no clock. :class:`TextCutter` takes pieces as they arrive (an LLM's
tokens, lines, a whole text) and hands back each unit the moment it is complete, so the
speaker can start synthesising the first sentence while the rest is still being written.

A unit ends at

- a sentence end (``. ! ? …``, possibly followed by closing quotes or brackets) followed by
  white space, unless the word before a full stop is a common abbreviation ("Dr.", "e.g.")
  or a single letter (an initial), or dotted letters ("p.m.", "U.S.");
- a line break;
- a clause mark (``, ; : —``) followed by white space, once the unit holds at least
  ``first_clause_words`` words (the first unit of a text, so the first audio comes early) or
  ``clause_words`` words (later units, which keep whole sentences for better prosody);
- ``max_chars`` characters without any of the above: cut at the last space before it.

:func:`clean_text` removes what a voice cannot say: control and format characters, private
use and unassigned code points, and symbols such as emoji.
"""

from __future__ import annotations

import re
import unicodedata

from ..errors import ConfigError

__all__ = ["TextCutter", "clean_text", "cut_text"]

_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "no",
    "approx", "dept", "inc", "ltd", "co", "mt", "fig", "cf", "al",
})
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
_CLAUSE_END = re.compile(r"[,;:—–][\"'”’)\]]*(?=\s)")
_WORD = re.compile(r"\w", re.UNICODE)
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "So", "Sk"})


def clean_text(text: str) -> str:
    r"""Replace characters a voice cannot say by a space; keep line breaks.

    Control characters (except tab and line breaks), format characters (zero-width joiners,
    bidi marks), private-use, surrogate and unassigned code points and other symbols (emoji,
    dingbats) each become one space. ``\r\n`` and ``\r`` become ``\n``.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for ch in text:
        if ch in "\n\t" or ch.isalnum() or ch == " ":
            out.append(ch)
        elif unicodedata.category(ch) in _DROP_CATEGORIES:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def _speakable(unit: str) -> bool:
    return _WORD.search(unit) is not None


class TextCutter:
    """Cut text pieces into units (sentences or clauses) as soon as each one is complete.

    Example::

        cutter = TextCutter()
        for token in tokens:
            for unit in cutter.feed(token):
                synthesise(unit)
        for unit in cutter.flush():
            synthesise(unit)

    Args:
        max_chars: the longest unit, in characters (a longer one is cut at a space).
        first_clause_words: the first unit may end at a clause mark once it has this many
            words.
        clause_words: later units may end at a clause mark once they have this many words.

    Raises:
        ConfigError: a limit is not a positive int.
    """

    def __init__(self, *, max_chars: int = 300, first_clause_words: int = 4,
                 clause_words: int = 16) -> None:
        for name, value in (("max_chars", max_chars), ("first_clause_words", first_clause_words),
                            ("clause_words", clause_words)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if max_chars < 20:
            raise ConfigError(f"max_chars must be at least 20, got {max_chars}")
        self._max_chars = max_chars
        self._first_clause_words = first_clause_words
        self._clause_words = clause_words
        self._buffer = ""
        self._units = 0

    @property
    def pending(self) -> str:
        """Text received and not yet handed out as a unit."""
        return self._buffer

    def feed(self, piece: str) -> list[str]:
        """Add a piece of text; return the units it completed (possibly none).

        Raises:
            TypeError: ``piece`` is not a str.
        """
        if not isinstance(piece, str):
            raise TypeError(f"text pieces must be str, got {type(piece).__name__}")
        self._buffer += clean_text(piece)
        units: list[str] = []
        while True:
            cut = self._find_cut()
            if cut is None:
                break
            unit, self._buffer = self._buffer[:cut], self._buffer[cut:]
            self._emit(unit, units)
        return units

    def flush(self) -> list[str]:
        """End the text: return what is left as a last unit (none if it has no words)."""
        units: list[str] = []
        rest, self._buffer = self._buffer, ""
        while len(rest) > self._max_chars:
            cut = self._space_before(rest, self._max_chars)
            self._emit(rest[:cut], units)
            rest = rest[cut:]
        self._emit(rest, units)
        return units

    def _emit(self, unit: str, units: list[str]) -> None:
        unit = " ".join(unit.split())
        if _speakable(unit):
            units.append(unit)
            self._units += 1

    def _find_cut(self) -> int | None:
        text = self._buffer[:self._max_chars + 1]  # no cut lies further out
        candidates: list[int] = []
        newline = text.find("\n")
        if newline >= 0:
            candidates.append(newline + 1)
        for match in _SENTENCE_END.finditer(text):
            if not self._is_abbreviation(text, match.start(), match.group()):
                candidates.append(match.end())
                break
        min_words = self._first_clause_words if self._units == 0 else self._clause_words
        for match in _CLAUSE_END.finditer(text):
            if len(text[:match.start()].split()) >= min_words:
                candidates.append(match.end())
                break
        if candidates:
            cut = min(candidates)
            if cut <= self._max_chars:
                return cut
        if len(self._buffer) > self._max_chars:
            return self._space_before(text, self._max_chars)
        return None

    @staticmethod
    def _is_abbreviation(text: str, start: int, mark: str) -> bool:
        if not mark.startswith(".") or len(mark.rstrip("\"'”’)]")) > 1:
            return False
        words = text[:start].split()
        if not words:
            return False
        word = words[-1].lstrip("\"'“‘([").lower()
        return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or (
            "." in word and word.replace(".", "").isalpha())  # "p.m.", "U.S."

    @staticmethod
    def _space_before(text: str, limit: int) -> int:
        space = text.rfind(" ", 0, limit)
        return space + 1 if space > 0 else limit


def cut_text(text: str, **limits: int) -> list[str]:
    """Cut a whole text into units at once (see :class:`TextCutter` for the rules)."""
    cutter = TextCutter(**limits)
    return cutter.feed(text) + cutter.flush()
