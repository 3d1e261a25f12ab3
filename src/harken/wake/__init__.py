"""Wake words: listen only after "jarvis", "hey harken" or any phrase.

- :mod:`~harken.wake.base`: the frame detector and phrase matcher protocols.
- :mod:`~harken.wake.gate`: the pure waiting/listening state machine.
- :mod:`~harken.wake.phrase`: any phrase, matched on the text of short utterances.
- :mod:`~harken.wake.porcupine`, :mod:`~harken.wake.openwakeword`: frame detectors whose
  packages are imported only when they load.
- :mod:`~harken.wake.names`: backend names, aliases, word lists and keyword tables (pure;
  the config validates through it).
- :mod:`~harken.wake.factory`: backend names to objects.

Importing this package imports no backend package and starts nothing; its names resolve on
first access, so the config can import :mod:`~harken.wake.names` without loading the
backends' modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

__all__ = [
    "BACKENDS",
    "GateState",
    "OpenWakeWordDetector",
    "PhraseMatch",
    "PhraseMatcher",
    "PhraseWakeWord",
    "PorcupineDetector",
    "WakeGate",
    "WakeWordDetector",
    "build_wake_backend",
    "normalize_backend",
    "parse_wake_words",
]

_LAZY: dict[str, str] = {
    "BACKENDS": "harken.wake.names",
    "GateState": "harken.wake.gate",
    "OpenWakeWordDetector": "harken.wake.openwakeword",
    "PhraseMatch": "harken.wake.base",
    "PhraseMatcher": "harken.wake.base",
    "PhraseWakeWord": "harken.wake.phrase",
    "PorcupineDetector": "harken.wake.porcupine",
    "WakeGate": "harken.wake.gate",
    "WakeWordDetector": "harken.wake.base",
    "build_wake_backend": "harken.wake.factory",
    "normalize_backend": "harken.wake.names",
    "parse_wake_words": "harken.wake.names",
}

if TYPE_CHECKING:  # pragma: no cover
    from .base import PhraseMatch, PhraseMatcher, WakeWordDetector
    from .factory import build_wake_backend
    from .gate import GateState, WakeGate
    from .names import BACKENDS, normalize_backend, parse_wake_words
    from .openwakeword import OpenWakeWordDetector
    from .phrase import PhraseWakeWord
    from .porcupine import PorcupineDetector

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
