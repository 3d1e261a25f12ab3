"""WhisperOptions: the faster-whisper engine's pass and guard options, typed and validated.

Pure code, no faster-whisper import. Users write them as the dict ``EngineConfig.options``
(the form the README and the CLI show); :meth:`WhisperOptions.from_dict` is the one place
that dict becomes typed options, and it names every key it refuses.

==============================  =========  ===================================================
key                             default    meaning
==============================  =========  ===================================================
``fast_partials``               True       partial requests use the fast pass
``fast_finals``                 True       final requests use the fast pass
``fast_min_window_s``           10.0       shortest encoder window of a fast partial, seconds
``fast_final_min_window_s``     12.0       shortest encoder window of a fast final, seconds
``fast_cheap_min_window_s``     10.0       shortest encoder window of a "cheap" final (sent
                                           while others wait), seconds
``fast_max_tokens_per_s``       8.0        fast pass token cap per second of audio (+16)
``batch_cheap_finals``          1          most "cheap" finals decoded together (1: never
                                           batch; for a GPU)
``no_speech_threshold``         0.6        drop text when no_speech_prob is above this ...
``log_prob_threshold``          -1.0       ... and avg_logprob is below this
``no_speech_hard_threshold``    0.8        drop text when no_speech_prob is above this
``compression_ratio_threshold`` 2.4        drop text more repetitive than this
``max_repeats``                 2          keep at most this many copies of a repeated n-gram
``phantom_phrases``             True       drop subtitle credits and sign-offs Whisper
                                           invents on silence ("谢谢观看")
==============================  =========  ===================================================

``None`` switches a threshold or ``max_repeats`` off. Any other key must be a keyword
argument of ``WhisperModel.transcribe`` (:data:`TRANSCRIBE_KEYS`, pinned against the
installed faster-whisper by ``tests/unit/test_whisper_contract.py``); those are kept in
:attr:`WhisperOptions.transcribe` and passed on. The three thresholds are passed on too:
``WhisperModel.transcribe`` uses them for its own temperature fallback and window skipping.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...config import Quality
from ...errors import ConfigError

__all__ = ["TRANSCRIBE_KEYS", "WhisperOptions"]

TRANSCRIBE_KEYS = frozenset({
    "language", "task", "log_progress", "beam_size", "best_of", "patience", "length_penalty",
    "repetition_penalty", "no_repeat_ngram_size", "temperature", "compression_ratio_threshold",
    "log_prob_threshold", "no_speech_threshold", "condition_on_previous_text",
    "prompt_reset_on_temperature", "initial_prompt", "prefix", "suppress_blank",
    "suppress_tokens", "without_timestamps", "max_initial_timestamp", "word_timestamps",
    "prepend_punctuations", "append_punctuations", "multilingual", "vad_filter",
    "vad_parameters", "max_new_tokens", "chunk_length", "clip_timestamps",
    "hallucination_silence_threshold", "hotwords", "language_detection_threshold",
    "language_detection_segments",
})
"""``WhisperModel.transcribe`` keyword arguments accepted in the options (faster-whisper 1.2)."""

_THRESHOLDS = ("no_speech_threshold", "log_prob_threshold", "compression_ratio_threshold")
"""Guard options that ``WhisperModel.transcribe`` takes as well."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


@dataclass(frozen=True)
class WhisperOptions:
    """The faster-whisper engine's options (see the module docstring for each one).

    Raises:
        ConfigError: a value has the wrong type or range, or ``transcribe`` holds a key that
            is not a ``WhisperModel.transcribe`` keyword argument.
    """

    fast_partials: bool = True
    """Partial requests use the fast pass."""
    fast_finals: bool = True
    """Final requests use the fast pass (a doubtful one is decoded again by the plain pass)."""
    fast_min_window_s: float = 10.0
    """Shortest encoder window of a fast partial, seconds."""
    fast_final_min_window_s: float = 12.0
    """Shortest encoder window of a fast final, seconds. 12 s rather than 15 s cuts a
    final pass of 3-7 s of speech by ~12% (the encoder and the decoder's cross-attention
    see 600 positions instead of 750) with the same WER on ``benchmarks/engine_speed.py``'s
    clips (9.2% against 9.4%, human 1.9% both) and on ``benchmarks/turns.py``'s complete
    utterances; 10 s lost WER (10.5%) and beam 3 or 2 did too (9.8%), while beam 4 saved
    nothing."""
    fast_cheap_min_window_s: float = 10.0
    """Shortest encoder window of a "cheap" final, seconds (the partials' by default).
    Shorter saves encoder time but makes tiny.en repeat short prompts: at 7 s, the server's
    8 kHz "go forward ten meters" came out twice ("Go forward 10 meters. Go forward 10
    meters.") in ``benchmarks/server_clients.py --telephone``; at 5 s, espeak phrases under
    2 s did ("Hello? Hello?"). Decoding again in 10 s when the text starts over or is
    doubtful does not pay either: on the server's own telephone final requests (early-final
    cuts, many of 1.2-2.3 s), a window of the audio plus 2 s needed the second decode for 28
    of 52 (at least 5 s: 20 of 52), so a cheap final cost 0.27-0.30 CPU s (0.24) against
    0.21-0.22 in 10 s, 1 thread."""
    fast_max_tokens_per_s: float = 8.0
    """Fast pass token budget per second of audio (plus 16 tokens)."""
    batch_cheap_finals: int = 1
    """Most "cheap" finals (load shedding) the engine decodes in one batch when several wait
    (:meth:`~.fast_pass.FastPass.run_batch`); 1 decodes each alone. Off by default: on 2
    CPU cores a batch of 8 costs 0.7-0.8 of 8 alone (``benchmarks/batching.py --cheap``)
    but answers all 8 at its end, and ``benchmarks/server_clients.py --telephone`` measured
    worse E2F with it (8 streams: p95 10.1 s against 2.5 s, a shared machine). Meant for a
    GPU, where a batch costs about as much as one clip; not yet measured on one."""
    no_speech_threshold: float | None = 0.6
    """Drop text when no_speech_prob is above this and avg_logprob below log_prob_threshold."""
    log_prob_threshold: float | None = -1.0
    """Average log-probability below which a decode is not confident."""
    no_speech_hard_threshold: float | None = 0.8
    """Drop text when no_speech_prob is above this, whatever its log-probability."""
    compression_ratio_threshold: float | None = 2.4
    """Drop text whose gzip compression ratio is above this (too repetitive to be speech)."""
    max_repeats: int | None = 2
    """Keep at most this many back-to-back copies of a repeated n-gram."""
    phantom_phrases: bool = True
    """Drop subtitle credits and video sign-offs (:func:`~.guards.is_phantom`)."""
    transcribe: dict[str, Any] = field(default_factory=dict)
    """Other ``WhisperModel.transcribe`` keyword arguments (JSON-friendly values)."""

    def __post_init__(self) -> None:
        for name in ("fast_partials", "fast_finals", "phantom_phrases"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"option {name!r} must be True or False, "
                                  f"got {getattr(self, name)!r}")
        for name in ("fast_min_window_s", "fast_final_min_window_s", "fast_cheap_min_window_s",
                     "fast_max_tokens_per_s"):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                raise ConfigError(f"option {name!r} must be a number > 0, got {value!r}")
        if isinstance(self.batch_cheap_finals, bool) or not isinstance(
                self.batch_cheap_finals, int) or not 1 <= self.batch_cheap_finals <= 64:
            raise ConfigError(f"option 'batch_cheap_finals' must be an int from 1 to 64, "
                              f"got {self.batch_cheap_finals!r}")
        for name in (*_THRESHOLDS, "no_speech_hard_threshold"):
            value = getattr(self, name)
            if value is not None and not _is_number(value):
                raise ConfigError(f"option {name!r} must be a number or None, got {value!r}")
        repeats = self.max_repeats
        if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int)
                                    or repeats < 1):
            raise ConfigError(f"option 'max_repeats' must be an int >= 1 or None, "
                              f"got {repeats!r}")
        if not isinstance(self.transcribe, Mapping):
            raise ConfigError(f"transcribe must be a dict, got {self.transcribe!r}")
        own = sorted(key for key in self.transcribe if key in _own_names())
        if own:
            raise ConfigError(f"set {', '.join(own)} as WhisperOptions field(s), "
                              "not in transcribe")
        unknown = sorted(str(key) for key in self.transcribe if key not in TRANSCRIBE_KEYS)
        if unknown:
            raise ConfigError(_unknown_message(unknown))
        object.__setattr__(self, "transcribe", dict(self.transcribe))

    @classmethod
    def from_dict(cls, options: Mapping[str, Any], *,
                  where: str = "EngineConfig.options") -> WhisperOptions:
        """Build from the user's dict form; see :meth:`updated`."""
        return cls().updated(options, where=where)

    def updated(self, options: Mapping[str, Any], *,
                where: str = "EngineConfig.options") -> WhisperOptions:
        """These options with the keys of ``options`` overriding them.

        Args:
            options: harken's option keys (the fields above) and ``WhisperModel.transcribe``
                keyword arguments, mixed, as users write ``EngineConfig.options``.
            where: what ``options`` is, for the error message.

        Raises:
            ConfigError: naming ``where`` and the bad key(s): an unknown key or a bad value.
        """
        if not options:
            return self
        own = _own_names()
        unknown = sorted(str(key) for key in options
                         if key not in own and key not in TRANSCRIBE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: {_unknown_message(unknown)}")
        mine = {key: value for key, value in options.items() if key in own}
        passed = {**self.transcribe,
                  **{key: value for key, value in options.items() if key not in own}}
        try:
            return dataclasses.replace(self, **mine, transcribe=passed)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def fast_window_s(self, quality: Quality | None, kind: str) -> float | None:
        """Which pass a request takes: the fast pass's shortest window, or None for the plain pass.

        Args:
            quality: the request's hinted quality: "standard" takes the plain pass, "fast"
                the fast pass, "cheap" the fast pass in the cheap window; None follows
                :attr:`fast_partials` / :attr:`fast_finals`.
            kind: "partial" or "final".

        Returns:
            Seconds, or None.
        """
        if quality == "standard":
            return None
        if quality == "cheap":
            return self.fast_cheap_min_window_s if kind == "final" else self.fast_min_window_s
        if kind == "partial":
            if quality is None and not self.fast_partials:
                return None
            return self.fast_min_window_s
        if quality is None and not self.fast_finals:
            return None
        return self.fast_final_min_window_s

    def transcribe_kwargs(self) -> dict[str, Any]:
        """The keyword arguments these options give ``WhisperModel.transcribe``: the three
        thresholds, then :attr:`transcribe` (which may override them).
        """
        return {**{name: getattr(self, name) for name in _THRESHOLDS}, **self.transcribe}


def _own_names() -> frozenset[str]:
    """Harken's own option names: the fields but ``transcribe``."""
    return frozenset(f.name for f in dataclasses.fields(WhisperOptions)) - {"transcribe"}


def _unknown_message(keys: list[str]) -> str:
    return (f"unknown faster-whisper option(s) {', '.join(map(repr, keys))}; use harken's "
            f"{', '.join(sorted(_own_names()))} or a WhisperModel.transcribe keyword argument")
