"""RealtimeSTT-compatible ``AudioToTextRecorder``: switch by changing one import.

``from harken.compat import AudioToTextRecorder`` takes every argument of RealtimeSTT 1.1.2's
recorder with the same name and default, and has its public methods and attributes. Each
argument is mapped onto harken's equivalent, a documented no-op (a knob of RealtimeSTT's
own internals), or refused with a :class:`~harken.errors.ConfigError` naming it and what to
use instead when given a value harken cannot honour; :data:`.arguments.ARGUMENTS` is the
table (the README's compatibility table is written from it). Nothing starts at
construction: the recorder starts on first use.

Modules: :mod:`.arguments` (the table), :mod:`.mapping` (values and callbacks -> harken's,
finals -> RealtimeSTT's text), :mod:`.tap` (the audio source with a tap; file feeding),
:mod:`.recordings` (finished recordings and their finals), :mod:`.other_audio` (finals of
other audio), :mod:`.handoff` (text() callback threads), :mod:`.recorder` (the class).
"""

from __future__ import annotations

from .recorder import AudioToTextRecorder

__all__ = ["AudioToTextRecorder"]
