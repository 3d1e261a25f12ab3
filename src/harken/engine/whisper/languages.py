"""Language choice for multilingual Whisper: detection restricted to a set, and one script.

Pure (OpenCC is imported by :mod:`harken.text.chinese` only when Chinese text is converted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from ...text.chinese import (
    ChineseScript,
    NumeralStyle,
    convert_numerals,
    convert_script,
    is_chinese,
)
from ..base import EngineOutput

__all__ = ["in_script", "pick_language"]


def pick_language(ranked: Iterable[tuple[str, float]],
                  allowed: Sequence[str] = ()) -> tuple[str, float]:
    """The most probable language of Whisper's detection that ``allowed`` permits.

    Args:
        ranked: ``(code, probability)`` pairs, most probable first (codes such as "en", or
            Whisper's tokens such as "<|en|>").
        allowed: the codes permitted; empty permits every language.

    Returns:
        ``(code, probability)``; the first allowed code with probability 0.0 when the
        detection ranked none of them (a model that lacks the language).

    Raises:
        ValueError: ``ranked`` is empty and nothing is allowed.
    """
    permitted = {code.lower() for code in allowed}
    for code, probability in ranked:
        code = code[2:-2] if code.startswith("<|") and code.endswith("|>") else code
        if not permitted or code in permitted:
            return code, float(probability)
    if allowed:
        return allowed[0], 0.0
    raise ValueError("language detection returned no language")


def in_script(output: EngineOutput, script: ChineseScript | None,
              numerals: NumeralStyle | None = None) -> EngineOutput:
    """``output`` with Chinese text and words in ``script`` and numbers in the ``numerals``
    style (None: as the model wrote them); other languages unchanged. Each word is converted
    on its own, so a number the model split over two words may read differently there.
    """
    if (script is None and numerals is None) or not is_chinese(output.language) \
            or not output.text:
        return output

    def convert(text: str) -> str:
        text = convert_script(text, script) if script is not None else text
        return convert_numerals(text, numerals) if numerals is not None else text

    words = tuple(dataclasses.replace(w, text=convert(w.text)) for w in output.words)
    return dataclasses.replace(output, text=convert(output.text), words=words)
