"""harken.phone: a SIP phone agent (answers calls, listens, replies by voice, barge-in).

Needs the ``phone`` extra (``pjsua2-python``; pjproject is GPL-2.0-or-later, so using this
subpackage puts your program under the GPL's terms) and, for the default voice, Debian's
espeak-ng. PJSUA2 runs only in harken's SIP program (:mod:`harken.phone.sip_program`), never
in your process. Importing this package imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .agent import PhoneAgent
    from .call import PhoneCall
    from .caller import BaresipCaller
    from .voice import PhoneVoice, SpeakerVoice

__all__ = ["BaresipCaller", "PhoneAgent", "PhoneCall", "PhoneVoice", "SpeakerVoice"]

_EXPORTS = {
    "PhoneAgent": "harken.phone.agent",
    "PhoneCall": "harken.phone.call",
    "BaresipCaller": "harken.phone.caller",
    "SpeakerVoice": "harken.phone.voice",
    "PhoneVoice": "harken.phone.voice",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
