"""Speech output: text in, streamed speech out, stoppable at once (issue #89's other half).

Importing this package does nothing; names resolve lazily. :class:`Speaker` and
:class:`AsyncSpeaker` speak into a callback, an iterator, the sound card or a WAV file;
:class:`SpeechEngineHost` is the speech engine program several speakers can share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "AsyncSpeaker": "harken.speak.aio",
    "AsyncSpeechHandle": "harken.speak.aio",
    "SentenceReport": "harken.speak.report",
    "SpeechEngineHost": "harken.speak.host",
    "SpeechHandle": "harken.speak.report",
    "SpeechReport": "harken.speak.report",
    "Speaker": "harken.speak.speaker",
    "TextCutter": "harken.speak.cutter",
    "installed_voices": "harken.speak.voices",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .aio import AsyncSpeaker, AsyncSpeechHandle
    from .cutter import TextCutter
    from .host import SpeechEngineHost
    from .report import SentenceReport, SpeechHandle, SpeechReport
    from .speaker import Speaker
    from .voices import installed_voices

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
