"""OpenAI Realtime transcription sessions: the session settings and their events (pure).

:func:`parse_session_update` applies a client's ``session.update`` (GA dialect) or
``transcription_session.update`` (beta dialect) to :class:`RealtimeSettings`, and
:func:`render_session` writes the ``session`` object harken answers with, in the client's
dialect. A value harken cannot honour raises :class:`EventError`, which the connection
(:mod:`harken.server.openai_realtime.connection`) sends as an OpenAI ``error`` event.

No I/O and no clock: plain functions of their arguments, safe on any thread (the server
calls them on its event loop).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...audio.convert import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from ...config import TURN_EAGERNESS, VadConfig
from ...engine.base import DecodeHints
from ...units import MIN_SILENCE_MS

__all__ = ["LOGPROBS", "EventError", "RealtimeSettings", "parse_session_update", "render_session"]

_GA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "ulaw", "audio/pcma": "alaw"}
_BETA_FORMATS = {"pcm16": "pcm16", "g711_ulaw": "ulaw", "g711_alaw": "alaw"}
_NOISE_TYPES = ("near_field", "far_field")
LOGPROBS = "item.input_audio_transcription.logprobs"
"""The one ``include`` value of transcription sessions."""


class EventError(Exception):
    """A client event harken cannot honour: becomes an OpenAI ``error`` event."""

    def __init__(self, message: str, code: str = "invalid_value",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param


@dataclass(frozen=True)
class RealtimeSettings:
    """The effective settings of one transcription session."""

    encoding: str = "pcm16"
    """pcm16 (little-endian int16), ulaw or alaw."""
    sample_rate: int = 24000
    """Samples per second of the appended audio, in Hz."""
    server_vad: bool = True
    """True: harken's VAD commits; False (``turn_detection: null``): the client commits."""
    silence_duration_ms: int = 500
    """Silence that ends an utterance, in ms (harken's ``post_speech_silence_ms``)."""
    prefix_padding_ms: int = 400
    """Audio kept before the detected speech, in ms (harken's ``pre_roll_ms``)."""
    threshold: float = 0.5
    """Echoed to the client; not used."""
    semantic: bool = False
    """``semantic_vad``: harken's smart end of turn (:mod:`harken.core.turn`)."""
    eagerness: str = "auto"
    """``semantic_vad``'s eagerness: "low", "medium", "high" or "auto"."""
    model: str = "whisper-1"
    """Echoed to the client; the server runs one engine."""
    language: str | None = None
    """Language code for the engine, e.g. "en"; None lets the engine decide."""
    prompt: str = ""
    """The engine's initial prompt."""
    noise_reduction: dict[str, Any] | None = None
    """``{"type": "near_field" | "far_field"}`` or None: accepted and echoed, but a no-op
    (harken applies no noise reduction; its VAD and Whisper take the audio as it is)."""
    include: tuple[str, ...] = ()
    """Extra fields of the transcription events: ``"item.input_audio_transcription.logprobs"``
    adds ``logprobs`` to the deltas and the completed event."""

    @property
    def logprobs(self) -> bool:
        """The client asked for per-token log-probabilities."""
        return LOGPROBS in self.include

    @classmethod
    def defaults(cls, vad: VadConfig) -> RealtimeSettings:
        """The settings a new session starts with (server VAD with the server's timings)."""
        return cls(silence_duration_ms=vad.post_speech_silence_ms,
                   prefix_padding_ms=vad.pre_roll_ms,
                   semantic=vad.turn_detection == "smart", eagerness=vad.turn_eagerness)

    def vad_config(self, base: VadConfig, *, smart: bool = True) -> VadConfig:
        """``base`` with this session's silence, padding and turn detection.

        ``semantic_vad`` becomes ``turn_detection="smart"`` with the eagerness, when
        ``smart`` (the server has the turn model); else fixed turns. With smart turns the
        silence is the normal wait, between ``base``'s minimum and maximum silences.

        Raises:
            ConfigError: a value is out of VadConfig's range.
        """
        silence = max(MIN_SILENCE_MS, self.silence_duration_ms)
        config = dataclasses.replace(base, post_speech_silence_ms=silence,
                                     pre_roll_ms=self.prefix_padding_ms,
                                     turn_detection="fixed")
        if not (self.semantic and smart):
            return config
        return dataclasses.replace(config, turn_detection="smart",
                                   turn_eagerness=self.eagerness,
                                   min_silence_ms=min(base.min_silence_ms, silence),
                                   max_silence_ms=max(base.max_silence_ms, silence))

    def decode_hints(self) -> DecodeHints:
        """Decode hints passed with every engine request. Word timings only when the client
        asked for logprobs (they are the words' probabilities): the realtime events carry
        no other word data, and a final pass without its alignment takes ~7% less
        (``benchmarks/engine_speed.py``, "no words").
        """
        return DecodeHints(initial_prompt=self.prompt or None,
                           word_timestamps=None if self.logprobs else False)

    def restart_key(self) -> tuple[Any, ...]:
        """The settings that need a new pipeline when they change."""
        return (self.encoding, self.sample_rate, self.silence_duration_ms,
                self.prefix_padding_ms, self.language, self.prompt, self.semantic,
                self.eagerness, self.logprobs)


def _int_ms(value: object, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60_000:
        raise EventError(f"{param} must be a whole number of milliseconds from 0 to 60000, "
                         f"got {value!r}", param=param)
    return value


def _turn_detection(settings: RealtimeSettings, value: object,
                    param: str) -> RealtimeSettings:
    if value is None:
        return dataclasses.replace(settings, server_vad=False)
    if not isinstance(value, dict):
        raise EventError(f"{param} must be an object or null, got {type(value).__name__}",
                         param=param)
    kind = value.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise EventError(f"{param}.type must be 'server_vad' or 'semantic_vad', got "
                         f"{kind!r}", param=f"{param}.type")
    changes: dict[str, Any] = {"server_vad": True, "semantic": kind == "semantic_vad"}
    eagerness = value.get("eagerness")
    if eagerness is not None:
        if eagerness not in TURN_EAGERNESS:
            raise EventError(f"{param}.eagerness must be one of {', '.join(TURN_EAGERNESS)}, "
                             f"got {eagerness!r}", param=f"{param}.eagerness")
        changes["eagerness"] = eagerness
    for name in ("silence_duration_ms", "prefix_padding_ms"):
        if value.get(name) is not None:
            changes[name] = _int_ms(value[name], f"{param}.{name}")
    threshold = value.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) \
                or not 0.0 <= threshold <= 1.0:
            raise EventError(f"{param}.threshold must be a number from 0 to 1, got "
                             f"{threshold!r}", param=f"{param}.threshold")
        changes["threshold"] = float(threshold)
    return dataclasses.replace(settings, **changes)


def _transcription(settings: RealtimeSettings, value: object, param: str) -> RealtimeSettings:
    if value is None:
        return settings
    if not isinstance(value, dict):
        raise EventError(f"{param} must be an object or null", param=param)
    changes: dict[str, Any] = {}
    for name in ("model", "language", "prompt"):
        if name not in value:
            continue
        item = value[name]
        if item is not None and not isinstance(item, str):
            raise EventError(f"{param}.{name} must be a string, got {type(item).__name__}",
                             param=f"{param}.{name}")
        if name == "language":
            changes[name] = item or None
        else:
            changes[name] = item or ("" if name == "prompt" else settings.model)
    return dataclasses.replace(settings, **changes)


def _ga_format(settings: RealtimeSettings, value: object, param: str) -> RealtimeSettings:
    if isinstance(value, str) and value in _BETA_FORMATS:  # lenient: the beta names
        return _beta_format(settings, value, param)
    if not isinstance(value, dict) or value.get("type") not in _GA_FORMATS:
        raise EventError(f"{param} must be {{\"type\": \"audio/pcm\", \"rate\": 24000}}, "
                         f"{{\"type\": \"audio/pcmu\"}} or {{\"type\": \"audio/pcma\"}}, "
                         f"got {value!r}", param=param)
    encoding = _GA_FORMATS[value["type"]]
    rate = 24000 if encoding == "pcm16" else 8000
    if encoding == "pcm16" and value.get("rate") is not None:
        rate = value["rate"]
        if isinstance(rate, bool) or not isinstance(rate, int) \
                or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise EventError(f"{param}.rate must be a whole number of Hz from "
                             f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}, got {rate!r}",
                             param=f"{param}.rate")
    return dataclasses.replace(settings, encoding=encoding, sample_rate=rate)


def _beta_format(settings: RealtimeSettings, value: object, param: str) -> RealtimeSettings:
    if value not in _BETA_FORMATS:
        raise EventError(f"{param} must be 'pcm16', 'g711_ulaw' or 'g711_alaw', got "
                         f"{value!r}", param=param)
    encoding = _BETA_FORMATS[str(value)]
    return dataclasses.replace(settings, encoding=encoding,
                               sample_rate=24000 if encoding == "pcm16" else 8000)


def _include(settings: RealtimeSettings, value: object, param: str) -> RealtimeSettings:
    if value is None:
        return dataclasses.replace(settings, include=())
    if not isinstance(value, list) or not all(v == LOGPROBS for v in value):
        raise EventError(f"{param} must be a list holding {LOGPROBS!r} or nothing, got "
                         f"{value!r}", param=param)
    return dataclasses.replace(settings, include=tuple(dict.fromkeys(value)))


def _noise_reduction(settings: RealtimeSettings, value: object,
                     param: str) -> RealtimeSettings:
    """Accept OpenAI's noise reduction setting (a no-op in harken: echoed only)."""
    if value is not None and (not isinstance(value, dict) or
                              value.get("type") not in _NOISE_TYPES):
        raise EventError(f"{param} must be null or {{\"type\": \"near_field\"}} or "
                         f"{{\"type\": \"far_field\"}}, got {value!r}", param=param)
    kept = None if value is None else {"type": value["type"]}
    return dataclasses.replace(settings, noise_reduction=kept)


_Field = tuple[str, Callable[[RealtimeSettings, object, str], RealtimeSettings]]
"""A session field's name and its parser: (settings, value, param name) -> settings."""
_BETA_FIELDS: tuple[_Field, ...] = (
    ("input_audio_format", _beta_format), ("input_audio_transcription", _transcription),
    ("turn_detection", _turn_detection), ("input_audio_noise_reduction", _noise_reduction))
"""The fields of a beta ``session`` object, in the order they apply."""
_GA_FIELDS: tuple[_Field, ...] = (
    ("format", _ga_format), ("transcription", _transcription),
    ("turn_detection", _turn_detection), ("noise_reduction", _noise_reduction))
"""The fields of a GA ``session.audio.input`` object, in the order they apply."""


def _apply(settings: RealtimeSettings, source: dict[str, Any], prefix: str,
           fields: tuple[_Field, ...]) -> RealtimeSettings:
    """``settings`` with each of ``fields`` present in ``source`` parsed into it, in order
    (errors name the field as ``<prefix>.<name>``).
    """
    for name, parse in fields:
        if name in source:
            settings = parse(settings, source[name], f"{prefix}.{name}")
    return settings


def parse_session_update(settings: RealtimeSettings, session: object,
                         beta: bool) -> RealtimeSettings:
    """Apply a ``session`` object of a session update to ``settings`` (pure).

    Only the fields present change; ``turn_detection: null`` turns server VAD off.

    Args:
        settings: the session's current settings.
        session: the ``session`` value of the client's event.
        beta: True for ``transcription_session.update`` (beta field names), False for
            ``session.update`` (GA ``audio.input`` layout).

    Returns:
        The new settings.

    Raises:
        EventError: a field has a value harken does not accept (says which and why).
    """
    if not isinstance(session, dict):
        raise EventError("session must be an object", param="session")
    if beta:
        settings = _apply(settings, session, "session", _BETA_FIELDS)
    else:
        kind = session.get("type", "transcription")
        if kind != "transcription":
            raise EventError("this server serves transcription sessions only: session.type "
                             f"must be 'transcription', got {kind!r}", param="session.type")
        audio = session.get("audio")
        if audio is not None and not isinstance(audio, dict):
            raise EventError("session.audio must be an object", param="session.audio")
        source = (audio or {}).get("input")
        if source is not None and not isinstance(source, dict):
            raise EventError("session.audio.input must be an object",
                             param="session.audio.input")
        settings = _apply(settings, source or {}, "session.audio.input", _GA_FIELDS)
    return _apply(settings, session, "session", (("include", _include),))


def render_session(settings: RealtimeSettings, session_id: str, beta: bool) -> dict[str, Any]:
    """The ``session`` object of a created/updated event, in the client's dialect."""
    turn: dict[str, Any] | None = None
    if settings.server_vad and settings.semantic:
        turn = {"type": "semantic_vad", "eagerness": settings.eagerness}
    elif settings.server_vad:
        turn = {"type": "server_vad", "threshold": settings.threshold,
                "prefix_padding_ms": settings.prefix_padding_ms,
                "silence_duration_ms": settings.silence_duration_ms}
    transcription = {"model": settings.model, "language": settings.language,
                     "prompt": settings.prompt}
    if beta:
        fmt = {v: k for k, v in _BETA_FORMATS.items()}[settings.encoding]
        return {"id": session_id, "object": "realtime.transcription_session",
                "input_audio_format": fmt, "input_audio_transcription": transcription,
                "turn_detection": turn, "input_audio_noise_reduction": settings.noise_reduction,
                "include": list(settings.include), "modalities": ["text"],
                # The beta session object requires one; harken issues no ephemeral keys.
                "client_secret": {"value": "", "expires_at": 0}}
    ga_format: dict[str, Any] = {"type": {v: k for k, v in _GA_FORMATS.items()}[
        settings.encoding]}
    if settings.encoding == "pcm16":
        # OpenAI's format allows only rate 24000 (its event models refuse another value);
        # a rate harken accepts beyond it is echoed as "harken_rate".
        ga_format["rate" if settings.sample_rate == 24000 else "harken_rate"] = \
            settings.sample_rate
    return {"type": "transcription", "id": session_id,
            "object": "realtime.transcription_session",
            "audio": {"input": {"format": ga_format, "transcription": transcription,
                                "turn_detection": turn,
                                "noise_reduction": settings.noise_reduction}},
            "include": list(settings.include)}
