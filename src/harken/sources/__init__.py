"""harken.sources: where audio comes from (pushed chunks, files, a microphone).

Importing this package imports numpy only: sounddevice and soundfile are imported when a
source starts.
"""

from __future__ import annotations

from .base import AudioSink, AudioSource
from .devices import list_input_devices
from .file import FileSource, decode_audio, open_audio, read_audio
from .microphone import MicrophoneSource
from .push import PushSource

__all__ = [
    "AudioSink",
    "AudioSource",
    "FileSource",
    "MicrophoneSource",
    "PushSource",
    "list_input_devices",
    "decode_audio",
    "open_audio",
    "read_audio",
]
