"""The Recorder's named callbacks (``on_final=``, ``on_partial=``, ...) and how events call them.

:class:`CallbackTable` validates the callbacks when the recorder is built and, given an
event, calls ``on_event`` and the one named callback for the event's type with that
callback's arguments. It runs on the "harken-dispatch" thread (or, once that has stopped,
on the thread closing the recorder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ConfigError
from ..events import (
    ErrorEvent,
    Event,
    FinalTranscript,
    PartialTranscript,
    PauseEnded,
    PauseStarted,
    RecordingStarted,
    RecordingStopped,
    SpeechEnded,
    SpeechStarted,
    TranscriptionStarted,
    WakeWordDetected,
    WakeWordTimeout,
    WakeWordWaiting,
)

__all__ = ["Callback", "CallbackTable"]

Callback = Callable[..., Any]

_EVENT_OF = {  # keyword -> the event type that calls it
    "on_final": FinalTranscript, "on_partial": PartialTranscript,
    "on_speech_start": SpeechStarted, "on_speech_end": SpeechEnded,
    "on_transcription_start": TranscriptionStarted,
    "on_recording_start": RecordingStarted, "on_recording_stop": RecordingStopped,
    "on_error": ErrorEvent, "on_wake_word": WakeWordDetected,
    "on_wake_word_timeout": WakeWordTimeout, "on_wake_word_waiting": WakeWordWaiting,
    "on_pause_start": PauseStarted, "on_pause_end": PauseEnded,
}


class CallbackTable:
    """Which user callback each event calls, and with what.

    Args:
        on_event: called with every event object.
        named: the Recorder's ``on_final=`` ... ``on_wake_word_waiting=`` keywords (see
            :class:`~harken.recorder.Recorder` for each one's arguments); None means unset.

    Raises:
        ConfigError: a callback is set but not callable.
    """

    def __init__(self, on_event: Callback | None, named: dict[str, Callback | None]) -> None:
        for name, cb in (*named.items(), ("on_event", on_event)):
            if cb is not None and not callable(cb):
                raise ConfigError(f"{name} must be callable, got {cb!r}")
        self._by_type = {_EVENT_OF[name]: cb for name, cb in named.items()}
        self._on_event = on_event

    def __call__(self, event: Event) -> None:
        """Call ``on_event(event)``, then the callback for the event's type, if set."""
        if self._on_event is not None:
            self._on_event(event)
        cb = self._by_type.get(type(event))
        if cb is None:
            return
        if isinstance(event, FinalTranscript):
            cb(event.text)
        elif isinstance(event, PartialTranscript):
            cb(event.stable, event.unstable)
        elif isinstance(event, ErrorEvent):
            cb(event.error)
        elif isinstance(event, WakeWordDetected):
            cb(event.word)
        else:
            cb()
