"""Chinese in one script: Traditional and Simplified conversion with OpenCC.

Whisper writes Mandarin in whichever script its training text for a phrase used, often
Traditional. :func:`convert_script` turns text into one script with OpenCC (Apache-2.0,
phrase-aware dictionaries shipped in the ``opencc`` wheel, offline), imported only on the
first conversion. Installed by ``harken[multilingual]``.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Literal

from ..errors import BackendNotInstalled, ConfigError

__all__ = ["CHINESE_SCRIPTS", "NUMERAL_STYLES", "ChineseScript", "NumeralStyle", "convert_numerals",
           "convert_script", "is_chinese"]

ChineseScript = Literal["simplified", "traditional"]
CHINESE_SCRIPTS: tuple[ChineseScript, ...] = ("simplified", "traditional")
"""The scripts :func:`convert_script` writes."""
_OPENCC_CONFIGS = {"simplified": "t2s", "traditional": "s2t"}


def is_chinese(language: str | None) -> bool:
    """True for Whisper's Chinese language codes ("zh", "yue") and tagged forms ("zh-TW")."""
    return language is not None and language.lower().split("-")[0] in ("zh", "yue")


@functools.lru_cache(maxsize=2)
def _converter(config: str) -> Any:
    try:
        import opencc
    except ImportError as exc:
        raise BackendNotInstalled("opencc", "multilingual",
                                  "Writing Chinese in one script") from exc
    return opencc.OpenCC(config)


def convert_script(text: str, script: ChineseScript) -> str:
    """``text`` with its Chinese characters in ``script``; other characters unchanged.

    Raises:
        ConfigError: ``script`` is not "simplified" or "traditional".
        BackendNotInstalled: OpenCC is not installed (``harken[multilingual]``).
    """
    if script not in _OPENCC_CONFIGS:
        raise ConfigError(f"Chinese script must be one of {', '.join(CHINESE_SCRIPTS)}, "
                          f"got {script!r}")
    if not text:
        return text
    return str(_converter(_OPENCC_CONFIGS[script]).convert(text))


NumeralStyle = Literal["arabic", "chinese"]
NUMERAL_STYLES: tuple[NumeralStyle, ...] = ("arabic", "chinese")
"""The number styles :func:`convert_numerals` writes."""
_DIGITS = re.compile(r"\d+(?:\.\d+)?%?")
_NUMERAL = "零〇一二两三四五六七八九十百千万亿"
_HANZI_NUMBER = re.compile(f"[{_NUMERAL}]+(?:点[{_NUMERAL}]+)?")
_UNITS = "点月号日年岁块元个"
"""After one of these, a lone numeral character is a number (三点, 五月); elsewhere it is
usually part of a word (一起, 想一想, 两遍, 十分) and stays."""


def convert_numerals(text: str, style: NumeralStyle) -> str:
    """``text`` (Chinese) with its numbers written in ``style``.

    "chinese": Arabic digits become Chinese numerals (8点 -> 八点, 125 -> 一百二十五,
    3.5 -> 三点五, 50% -> 百分之五十); years before 年, numbers with a leading zero and runs
    of five or more digits (phone numbers) are read digit by digit (2024年 -> 二零二四年).
    "arabic": Chinese numerals become digits where they are clearly a number: a run of two or
    more numeral characters that does not start with 百/千/万/亿 (万一 "in case" stays), or one
    numeral other than 一/两 before a unit such as 点/月/号 (三点 -> 3点, but 一起, 两遍,
    十分 stay). Whisper itself mostly writes digits.

    Raises:
        ConfigError: ``style`` is not "arabic" or "chinese".
        BackendNotInstalled: cn2an is not installed (``harken[multilingual]``).
    """
    if style not in NUMERAL_STYLES:
        raise ConfigError(f"numerals must be one of {', '.join(NUMERAL_STYLES)}, got {style!r}")
    cn2an = _cn2an()
    if style == "chinese":
        def spoken(match: re.Match[str]) -> str:
            number = match.group()
            percent = number.endswith("%")
            number = number.rstrip("%")
            year = match.string.startswith("年", match.end()) and len(number) == 4
            if year or (len(number) > 1 and number[0] == "0" and "." not in number) \
                    or (len(number) >= 5 and "." not in number):
                words = str(cn2an.an2cn(number, "direct"))
            else:
                words = str(cn2an.an2cn(number))
            return "百分之" + words if percent else words
        return _DIGITS.sub(spoken, text)

    def digits(match: re.Match[str]) -> str:
        run = match.group()
        unit = match.string[match.end():match.end() + 1]
        if (len(run) >= 2 and run[0] not in "百千万亿") or \
                (len(run) == 1 and run not in "一两" and unit and unit in _UNITS):
            try:
                return str(cn2an.cn2an(run, "smart"))
            except ValueError:
                return run
        return run
    return _HANZI_NUMBER.sub(digits, text)


@functools.lru_cache(maxsize=1)
def _cn2an() -> Any:
    try:
        import cn2an
    except ImportError as exc:
        raise BackendNotInstalled("cn2an", "multilingual",
                                  "Writing Chinese numbers in one style") from exc
    return cn2an
