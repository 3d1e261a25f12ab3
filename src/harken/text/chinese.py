"""Chinese in one script: Traditional and Simplified conversion with OpenCC.

Whisper writes Mandarin in whichever script its training text for a phrase used, often
Traditional. :func:`convert_script` turns text into one script with OpenCC (Apache-2.0,
phrase-aware dictionaries shipped in the ``opencc`` wheel, offline), imported only on the
first conversion. Installed by ``harken[multilingual]``.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from ..errors import BackendNotInstalled, ConfigError

__all__ = ["CHINESE_SCRIPTS", "ChineseScript", "convert_script", "is_chinese"]

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
