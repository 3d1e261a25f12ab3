"""The faster-whisper engine's pieces: options, text guards, model resolution, the fast pass.

Only :mod:`.fast_pass` touches faster-whisper's internals; the engine class itself is
:class:`harken.engine.faster_whisper.FasterWhisperEngine`. Nothing here imports
faster-whisper at import time.
"""

from __future__ import annotations
