"""Text units: words where text has spaces, single characters where it has none.

Chinese and Japanese are written without spaces, so splitting on whitespace makes a whole
sentence one "word". Everything in harken that votes on, compares, trims or counts words
(the partial stabiliser, the repeat guard, the final-vs-partial comparison, server deltas)
works on *units* instead: each Han, kana or Hangul-syllable character is a unit of its own,
with the punctuation that follows it attached (as "hello," carries its comma); any other
run of non-space characters is a unit as before. :func:`join_units` puts the units back
together with a space only where both sides are space-separated text, so
``join_units(split_units(t)) == t`` for text in one script written the usual way (mixed
text loses the spaces around its CJK parts, as Whisper writes it anyway).
"""

from __future__ import annotations

import re

__all__ = ["is_cjk", "join_units", "split_units"]

_CJK_CHARS = (
    "\u3040-\u30ff"  # hiragana, katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han (extension A, unified, compatibility)
    "\uac00-\ud7af"  # Hangul syllables
    "\U00020000-\U0003134f"  # Han extensions B-G
)
_CJK = f"[{_CJK_CHARS}]"
_UNIT = re.compile(
    rf"{_CJK}[^\s\w{_CJK_CHARS}]*"  # one CJK character and the punctuation after it
    rf"|(?:(?!{_CJK})\S)+"  # or a run of other non-space characters
)
_CJK_RE = re.compile(_CJK)
_WORDLIKE = re.compile(r"\w")


def is_cjk(char: str) -> bool:
    """True when ``char`` (one character) is a Han, kana or Hangul-syllable character."""
    return _CJK_RE.fullmatch(char) is not None


def split_units(text: str) -> list[str]:
    """The units of ``text`` in order (see the module docstring); ``[]`` for blank text.

    Example:
        ``split_units("我们去 Costco 吧。")`` gives ``["我", "们", "去", "Costco", "吧。"]``.
    """
    return _UNIT.findall(text)


def _closes_cjk(unit: str) -> bool:
    """The last letter-like character of ``unit`` is CJK (trailing punctuation skipped)."""
    for char in reversed(unit):
        if _WORDLIKE.match(char) or is_cjk(char):
            return is_cjk(char)
    return bool(unit) and not unit.isascii()  # only punctuation: full-width means CJK text


def join_units(units: list[str]) -> str:
    """Join units (or longer pieces of text) into text: no space next to a CJK character,
    one space elsewhere; empty and blank pieces are skipped, the others stripped.
    """
    parts: list[str] = []
    previous = ""
    for unit in (u.strip() for u in units):
        if not unit:
            continue
        if parts and not (_closes_cjk(previous) or is_cjk(unit[0])):
            parts.append(" ")
        parts.append(unit)
        previous = unit
    return "".join(parts)
