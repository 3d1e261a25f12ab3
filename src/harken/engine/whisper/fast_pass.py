"""The fast pass: the only code that touches faster-whisper's internals.

Runs inside the engine process, on its main thread, one call at a time. Whisper pads every
input to a 30 s window (3000 mel frames), so even 1 s of speech costs a full 30 s encoder
pass in ``WhisperModel.transcribe``. The fast pass encodes only the audio plus 1 s of
silence, at least ``window_s`` (shorter windows make tiny.en loop), then decodes without
timestamp tokens or temperature fallback, with at most
:attr:`~.options.WhisperOptions.fast_max_tokens_per_s` tokens per second of audio. Word
timings, when asked for, come from one alignment pass over the decoded tokens (the
cross-attention method of faster-whisper's ``word_timestamps``). Of the transcribe keyword
arguments it honours language, initial_prompt, hotwords, prefix, beam_size and
word_timestamps.

The internals used, each pinned against the installed faster-whisper by
``tests/unit/test_whisper_contract.py``: ``WhisperModel.feature_extractor``,
``.encode``, ``.get_prompt``, ``.find_alignment``, ``.hf_tokenizer``, ``.model`` (the
CTranslate2 ``Whisper``: ``generate``, ``detect_language``, ``is_multilingual``),
``faster_whisper.tokenizer.Tokenizer`` and ``faster_whisper.transcribe.merge_punctuations``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...config import SAMPLE_RATE
from ..base import EngineOutput, WordTiming
from .guards import doubtful, guard_text, looks_like_no_speech
from .languages import pick_language
from .options import WhisperOptions

__all__ = ["FastPass"]

logger = logging.getLogger("harken.engine.faster_whisper")

HOP_SAMPLES = 160
"""Samples per mel frame (10 ms at 16 kHz)."""
MAX_FRAMES = 3000
"""Whisper's window: 30 s of mel frames."""
_PAD_S = 1.0
"""Silence appended to the audio, seconds."""
_FRAME_MULTIPLE = 100
"""The window is rounded up to a multiple of this many frames (1 s)."""
_MAX_TOKENS = 448
"""Whisper's decoder context, in tokens."""

PREPEND_PUNCTUATION = "\"'“¿([{-"
APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"
"""Punctuation attached to the next / previous word in word timings (Whisper's sets)."""


class FastPass:
    """The fast pass over one loaded ``WhisperModel`` (see the module docstring).

    Args:
        model: a loaded ``faster_whisper.WhisperModel``.
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        self._tokenizers: dict[str | None, Any] = {}

    @staticmethod
    def supports(model: Any) -> bool:
        """True for a real ``WhisperModel`` (not a stand-in with only ``transcribe``)."""
        return hasattr(model, "feature_extractor")

    @staticmethod
    def fits(samples: int) -> bool:
        """True when ``samples`` (16 kHz) plus the padding fit one 30 s window."""
        return samples + int(_PAD_S * SAMPLE_RATE) <= MAX_FRAMES * HOP_SAMPLES

    def run(self, samples: NDArray[np.float32], kwargs: dict[str, Any],
            options: WhisperOptions, *, window_s: float, final: bool,
            languages: Sequence[str] = ()) -> EngineOutput | None:
        """Encode a window just longer than the audio and decode it without timestamps.

        Args:
            samples: contiguous float32 mono 16 kHz audio that :meth:`fits`.
            kwargs: the ``WhisperModel.transcribe`` keyword arguments of the request
                (language, initial_prompt, prefix, hotwords, beam_size, word_timestamps are
                read).
            options: the request's guard options.
            window_s: the shortest encoder window, seconds.
            final: a final request: a doubtful decode returns None, and words are aligned.
            languages: with no language in ``kwargs``, detect only among these codes
                (empty: any).

        Returns:
            The guarded output, or None for a final whose decode looks doubtful (low average
            log-probability, too repetitive, or out of tokens while not silent): the caller
            then runs the plain pass, whose temperature fallback is made for exactly that.
        """
        model = self._model
        min_frames = int(round(window_s * 100))
        needed = math.ceil((len(samples) + _PAD_S * SAMPLE_RATE) / HOP_SAMPLES)
        frames = min(MAX_FRAMES, max(min_frames,
                                     -(-needed // _FRAME_MULTIPLE) * _FRAME_MULTIPLE))
        padded = np.zeros(frames * HOP_SAMPLES, dtype=np.float32)
        padded[:len(samples)] = samples
        features = model.feature_extractor(padded, padding=HOP_SAMPLES)[:, :frames]
        encoded = model.encode(np.ascontiguousarray(features))
        language: str | None = kwargs.get("language")
        language_probability = 1.0
        if model.model.is_multilingual and language is None:
            language, language_probability = pick_language(
                model.model.detect_language(encoded)[0], languages)
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
        budget = max(16, int(seconds * options.fast_max_tokens_per_s) + 16 - n_prefix)
        max_length = min(_MAX_TOKENS, len(prompt) + budget)
        result = model.model.generate(
            encoded, [prompt], beam_size=int(kwargs.get("beam_size", 1)),
            max_length=max_length, return_scores=True, return_no_speech_prob=True)[0]
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]  # prefix included
        generated = max(0, len(tokens) - n_prefix)
        avg_logprob = float(result.scores[0]) * generated / (generated + 1)
        text = tokenizer.decode(tokens).strip()
        if looks_like_no_speech(float(result.no_speech_prob), avg_logprob, options, text):
            logger.debug("fast pass: dropped text that looks like no speech (no_speech_prob "
                         "%.2f, avg_logprob %.2f): %r", result.no_speech_prob, avg_logprob,
                         text)
            return EngineOutput(text="", language=language,
                                language_probability=float(language_probability))
        if final and doubtful(text, avg_logprob, len(prompt) + generated + 1 >= max_length,
                              options):
            return None
        words: list[WordTiming] = []
        if final and kwargs.get("word_timestamps") and tokens:
            words = self._align(tokenizer, tokens, encoded, len(samples) // HOP_SAMPLES)
        text, words = guard_text(text, words, options)
        return EngineOutput(text=text, language=language,
                            language_probability=float(language_probability),
                            words=tuple(words))

    def close(self) -> None:
        """Forget the model and the tokenizers."""
        self._model = None
        self._tokenizers.clear()

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

    def _align(self, tokenizer: Any, tokens: list[int], encoded: Any,
               frames: int) -> list[WordTiming]:
        """Word timings of ``tokens`` from the decoder's cross-attention (as faster-whisper's
        word_timestamps does), punctuation attached to its word; times in seconds.
        """
        from faster_whisper.transcribe import merge_punctuations

        alignment = self._model.find_alignment(tokenizer, [tokens], encoded, frames)[0]
        merge_punctuations(alignment, PREPEND_PUNCTUATION, APPEND_PUNCTUATION)
        return [WordTiming(float(w["start"]), float(w["end"]), str(w["word"]).strip(),
                           float(w["probability"]))
                for w in alignment if str(w["word"]).strip()]
