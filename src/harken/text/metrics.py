"""Error rates that users would accept as fair: WER for spaced text, CER for Chinese and Japanese.

For tests and benchmarks. Text is normalised before scoring: case folded, punctuation and
spaces removed, Chinese in Simplified characters and Arabic digits written as Chinese
numerals (Whisper writes "3月15号" for 三月十五号; cn2an converts), so only real recognition
errors count. The Chinese steps need ``harken[multilingual]``.
"""

from __future__ import annotations

import re
import unicodedata

from .chinese import convert_script, is_chinese
from .units import split_units

__all__ = ["edit_distance", "error_rate", "normalise_units", "uses_characters"]

_PUNCT = re.compile(r"[^\w\s']|_")


def uses_characters(language: str | None) -> bool:
    """True for languages scored by characters (CER): Chinese, Japanese, Korean... and Thai."""
    return language is not None and language.lower().split("-")[0] in (
        "zh", "yue", "ja", "ko", "th", "lo", "my", "km")


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two sequences of units (insert, delete, substitute: 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def normalise_units(text: str, language: str | None) -> list[str]:
    """The units scored for ``text``: characters (no spaces or punctuation) for a language
    that :func:`uses_characters`, else lower-case words without punctuation.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    if is_chinese(language):
        import cn2an  # lazily: it is slow to import

        text = str(cn2an.transform(convert_script(text, "simplified"), "an2cn"))
    text = _PUNCT.sub(" ", text)
    if uses_characters(language):
        return [c for c in text if not c.isspace()]
    return [u for word in text.split() for u in split_units(word)]


def error_rate(hypothesis: str, reference: str, language: str | None) -> float:
    """Edit distance over the reference's length in units (CER or WER, see above).

    Returns:
        A fraction (0.0 is perfect; it can pass 1.0). 0.0 when both are empty, 1.0 when only
        the reference is empty.
    """
    ref = normalise_units(reference, language)
    hyp = normalise_units(hypothesis, language)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(hyp, ref) / len(ref)
