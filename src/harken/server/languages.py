"""Checks a client's language codes against the languages of the server's model.

Every endpoint takes a language per session (the harken protocol's ``language`` and
``languages``, OpenAI's ``language``, RealtimeSTT's ``language`` parameter). A code the model
does not know would fail every request of the session inside the engine, so each endpoint asks
:func:`language_problem` first and answers in its own error form, with the bad code named.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["language_problem"]

_SHOWN = 12
"""Known codes listed in an error message; a multilingual model knows ~100."""


def language_problem(ready_info: dict[str, Any], codes: Iterable[str | None],
                     field: str = "language") -> str | None:
    """Why the first bad code of ``codes`` cannot be asked for, or None when all can.

    Args:
        ready_info: the engine's ready message (``EngineHost.ready_info``); its
            ``model_languages`` (or ``languages``) are the codes the model knows. Without
            them (an engine that does not say) any well-formed code passes.
        codes: the client's codes; None entries (detect) are skipped.
        field: the client's name for the setting, for the message.

    Returns:
        A message naming ``field``, the bad code and what the model knows, or None.
    """
    known = ready_info.get("model_languages", ready_info.get("languages"))
    allowed = {str(code) for code in known} if isinstance(known, (list, tuple)) else None
    for code in codes:
        if code is None:
            continue
        if not isinstance(code, str) or not 1 <= len(code) <= 16:
            return f"{field}: {code!r} is not a language code such as \"en\" or \"zh\""
        if allowed is not None and code not in allowed:
            shown = sorted(allowed)
            listed = ", ".join(shown[:_SHOWN]) + (f" ... ({len(shown)} in all)"
                                                   if len(shown) > _SHOWN else "")
            return f"{field}: {code!r} is not a language of this server's model ({listed})"
    return None
