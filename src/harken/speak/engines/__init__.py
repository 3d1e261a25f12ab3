"""Speech synthesis engines. They are loaded only inside the speech engine program.

:func:`create_synthesis_engine` builds one from a :class:`~harken.speak.voices.VoiceSpec`;
:class:`~harken.speak.engines.base.SynthesisEngine` is the protocol a plug-in implements.
"""

from __future__ import annotations

from .base import SynthesisEngine, create_synthesis_engine

__all__ = ["SynthesisEngine", "create_synthesis_engine"]
