"""Language choice for multilingual Whisper: detection restricted to a set, and one script.

Pure (OpenCC is imported by :mod:`harken.text.chinese` only when Chinese text is converted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from ...text.chinese import ChineseScript, convert_script, is_chinese
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


def in_script(output: EngineOutput, script: ChineseScript | None) -> EngineOutput:
    """``output`` with Chinese text and words in ``script``; other languages unchanged."""
    if script is None or not is_chinese(output.language) or not output.text:
        return output
    words = tuple(dataclasses.replace(w, text=convert_script(w.text, script))
                  for w in output.words)
    return dataclasses.replace(output, text=convert_script(output.text, script), words=words)
