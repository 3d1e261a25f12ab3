"""RealtimeSTT's server protocol as data: paths, parameter tables, frame parsing (pure).

The protocol is described in :mod:`harken.server.rtstt`. Nothing here does I/O or reads a
clock: :func:`parse_frame` splits a data-socket frame, :func:`tidy_text` tidies a transcript
as RealtimeSTT's server does, :func:`set_parameter` applies a control command to a client's
:class:`ClientSettings`. Safe on any thread (the server calls them on its event loop).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ...audio.convert import check_sample_rate
from ...errors import AudioFormatError, ProtocolError
from ...units import MIN_SILENCE_MS, s_to_ms

__all__ = ["CONTROL_PATH", "DATA_PATH", "END_METHODS", "FINISH_METHODS", "KNOWN",
           "NO_OP_METHODS", "READABLE", "SETTABLE", "ClientSettings", "error_reply",
           "parse_command", "parse_frame",
           "set_parameter", "silence_ms", "tidy_text"]

CONTROL_PATH = "/rtstt/control"
"""The control socket's path on the server's own port."""
DATA_PATH = "/rtstt/data"
"""The data socket's path on the server's own port."""

SETTABLE = ("language", "post_speech_silence_duration", "wake_word_activation_delay",
            "use_wake_words", "deactivity_silence_confirmation_duration")
"""Parameters a client may set (RealtimeSTT's list, less those harken cannot honour)."""
READABLE = SETTABLE + ("silero_sensitivity", "is_recording", "listen_start",
                       "recording_stop_time", "last_transcription_bytes_b64")
"""Parameters a client may read."""
KNOWN = READABLE + ("speech_end_silence_start", "last_transcription_bytes")
"""RealtimeSTT's allowed parameters: the rest are answered "not supported"."""
NO_OP_METHODS = ("clear_audio_queue", "set_microphone", "text")
"""Methods with nothing to do here: audio is processed as it arrives (no queue), there is
no server-side microphone; ``text`` is answered at once, since
every final reaches the data socket as ``fullSentence`` (stt-server's ``text`` blocks its
control socket until then and also sends the text only there)."""
END_METHODS = ("shutdown",)
"""Methods that end this client's session: the open utterance is transcribed, its final
sent, and the client's data sockets closed (other clients are not affected)."""
FINISH_METHODS = ("stop", "perform_final_transcription")
"""Methods that end the open utterance now and transcribe it."""


def tidy_text(text: str) -> str:
    """Tidy a transcript the way RealtimeSTT's server does before sending it.

    Leading spaces and a leading "..." go, a stray quote after a final "..." goes, and the
    first letter is upper-cased.
    """
    text = text.lstrip()
    if text.startswith("..."):
        text = text[3:].lstrip()
    if text.endswith("...'.") or text.endswith("...'"):
        text = text[:-1]
    return text[:1].upper() + text[1:]


def parse_frame(data: bytes, max_header_bytes: int) -> tuple[int, bytes]:
    """Split one data-socket frame into its sample rate and its PCM16 bytes.

    Args:
        data: the binary WebSocket message.
        max_header_bytes: the longest JSON metadata accepted, in bytes.

    Returns:
        ``(sample_rate_hz, pcm16_bytes)``.

    Raises:
        ProtocolError: the length prefix or the JSON metadata is malformed.
        AudioFormatError: the sample rate is out of range or the audio is not whole
            16-bit samples.
    """
    if len(data) < 4:
        raise ProtocolError(f"an audio frame of {len(data)} bytes is shorter than its 4-byte "
                            "metadata length")
    size = int.from_bytes(data[:4], "little")
    if size > max_header_bytes:
        raise ProtocolError(f"the frame's metadata is {size} bytes long; at most "
                            f"{max_header_bytes} bytes are accepted")
    if 4 + size > len(data):
        raise ProtocolError(f"the frame announces {size} bytes of metadata but holds only "
                            f"{len(data) - 4}")
    try:
        meta = json.loads(data[4:4 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError("the frame's metadata is not JSON; expected e.g. "
                            '{"sampleRate": 16000}') from None
    if not isinstance(meta, dict) or "sampleRate" not in meta:
        raise ProtocolError('the frame\'s metadata has no "sampleRate"; expected e.g. '
                            '{"sampleRate": 16000}')
    rate = check_sample_rate(meta["sampleRate"])
    pcm = data[4 + size:]
    if len(pcm) % 2:
        raise AudioFormatError(f"the frame holds {len(pcm)} bytes of audio; 16-bit PCM needs "
                               "an even number")
    return rate, pcm


@dataclasses.dataclass
class ClientSettings:
    """A client's parameters (set on its control socket)."""

    language: str | None = None
    post_speech_silence_duration: float = 0.5
    wake_word_activation_delay: float = 0.0
    deactivity_silence_confirmation_duration: float = 0.16
    """Stored and read back only: harken confirms silence within the post-speech silence."""
    use_wake_words: bool = False
    """Run the server's wake words in this client's streams."""
    wake_words_available: bool = False
    """The server has wake words (stt-server's ``--wake_words``); fixed."""

    def stream_key(self) -> tuple[object, ...]:
        """What a stream is built from: a change needs a new stream."""
        return (self.language, self.post_speech_silence_duration, self.use_wake_words,
                self.wake_word_activation_delay)


def silence_ms(seconds: float) -> int:
    """RealtimeSTT's ``post_speech_silence_duration`` (s) as harken's silence in ms (32..60000)."""
    return max(MIN_SILENCE_MS, min(60_000, s_to_ms(seconds)))


def parse_command(text: str) -> dict[str, Any] | None:
    """A control socket's JSON command as a dict, or None if it is not a JSON object."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def set_parameter(settings: ClientSettings, name: object, value: object) -> dict[str, Any]:
    """Apply ``set_parameter`` to ``settings``; return RealtimeSTT's answer (never raises)."""
    if name not in KNOWN:
        return error_reply(f"Parameter {name} is not allowed (set_parameter)")
    if name not in SETTABLE:
        return error_reply(f"Parameter {name} is not supported by the harken server "
                           "(set_parameter)")
    if name == "language":
        if value is not None and not isinstance(value, str):
            return error_reply(f"language must be a language code or \"\", got {value!r}")
        settings.language = value or None
    elif name == "use_wake_words":
        if value and not settings.wake_words_available:
            return error_reply("use_wake_words needs wake words: start the server with "
                               "--wake_words (set_parameter)")
        settings.use_wake_words = bool(value)
    else:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not 0 <= value <= 60:
            return error_reply(f"{name} must be a number of seconds from 0 to 60, "
                               f"got {value!r}")
        setattr(settings, str(name), float(value))
    return {"status": "success", "message": f"Parameter {name} set to {value}"}


def error_reply(message: str) -> dict[str, Any]:
    """RealtimeSTT's error answer on the control socket."""
    return {"status": "error", "message": message}
