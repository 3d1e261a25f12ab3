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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...config import SAMPLE_RATE
from ..base import EngineOutput, PassInterrupted, WordTiming
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
            languages: Sequence[str] = (),
            stop: Callable[[], bool] | None = None) -> EngineOutput | None:
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
            stop: asked once the audio is encoded: True skips the decode (a partial that a
                waiting final makes pointless, a cancelled request; CTranslate2 cannot stop
                a decode midway).

        Returns:
            The guarded output, or None for a final whose decode looks doubtful (low average
            log-probability, too repetitive, or out of tokens while not silent): the caller
            then runs the plain pass, whose temperature fallback is made for exactly that.

        Raises:
            PassInterrupted: ``stop`` said so after the encoder.
        """
        model = self._model
        frames = self._frames(len(samples), window_s)
        encoded = model.encode(self._features(samples, frames))
        if stop is not None and stop():
            raise PassInterrupted("stopped after the encoder: the decode was skipped")
        language: str | None = kwargs.get("language")
        language_probability = 1.0
        if model.model.is_multilingual and language is None:
            language, language_probability = pick_language(
                model.model.detect_language(encoded)[0], languages)
        elif not model.model.is_multilingual:
            language = "en"
        decoder = _Decoder(self._tokenizer(language), model, kwargs, options, final)
        result = model.model.generate(
            encoded, [decoder.prompt], beam_size=int(kwargs.get("beam_size", 1)),
            max_length=decoder.max_length(len(samples)), return_scores=True,
            return_no_speech_prob=True)[0]
        text = decoder.finish(result, len(samples), language, language_probability)
        if text is None:
            return None
        words = self._align(decoder.tokenizer, [text.tokens], encoded,
                            [len(samples) // HOP_SAMPLES])[0] if decoder.wants_words(text) else []
        return decoder.output(text, words)

    @staticmethod
    def batchable(model: Any, kwargs: dict[str, Any]) -> bool:
        """Whether requests with these keyword arguments can share one batch: the language
        is known without detecting it (a fixed one, or an English-only model).
        """
        return bool(kwargs.get("language")) or not model.model.is_multilingual

    def run_batch(self, batch: Sequence[NDArray[np.float32]], kwargs: dict[str, Any],
                  options: WhisperOptions, *, window_s: float,
                  final: bool) -> list[EngineOutput | None]:
        """:meth:`run` for several clips with the same settings, in one encoder call and one
        decoder call: all are padded to the longest one's window. Each clip's text is what
        :meth:`run` gives it alone in that window (decoding is per sequence). On 2 CPU cores
        a batch of 8 costs 0.7-0.8 of 8 single runs (``benchmarks/batching.py --cheap``);
        on a GPU a batch costs about as much as one clip.

        Args:
            batch: clips that each :meth:`fits`.
            kwargs: shared by all; :meth:`batchable` must be true for them.
            options: as for :meth:`run`.
            window_s: as for :meth:`run`.
            final: as for :meth:`run`.

        Returns:
            One output (or None: doubtful, see :meth:`run`) per clip, in order.
        """
        model = self._model
        frames = max(self._frames(len(samples), window_s) for samples in batch)
        encoded = model.encode(np.ascontiguousarray(np.stack(
            [self._features(samples, frames) for samples in batch])))
        language = str(kwargs.get("language") or "en")
        decoder = _Decoder(self._tokenizer(language), model, kwargs, options, final)
        results = model.model.generate(
            encoded, [decoder.prompt] * len(batch), beam_size=int(kwargs.get("beam_size", 1)),
            max_length=max(decoder.max_length(len(samples)) for samples in batch),
            return_scores=True, return_no_speech_prob=True)
        texts = [decoder.finish(result, len(samples), language, 1.0)
                 for result, samples in zip(results, batch, strict=True)]
        aligned: list[list[WordTiming]] = [[] for _ in batch]
        if any(text is not None and decoder.wants_words(text) for text in texts):
            # One alignment pass for the batch; a clip whose words are not wanted gets a
            # stand-in token and its result is not used.
            eot = decoder.tokenizer.eot
            aligned = self._align(decoder.tokenizer,
                                  [text.tokens if text is not None and decoder.wants_words(text)
                                   else [eot] for text in texts],
                                  encoded, [len(samples) // HOP_SAMPLES for samples in batch])
        return [None if text is None else decoder.output(
                    text, words if decoder.wants_words(text) else [])
                for text, words in zip(texts, aligned, strict=True)]

    @staticmethod
    def _frames(samples: int, window_s: float) -> int:
        """Mel frames of the window for ``samples`` of audio: the audio plus 1 s of silence,
        rounded up to whole seconds, at least ``window_s``, at most 30 s.
        """
        needed = math.ceil((samples + _PAD_S * SAMPLE_RATE) / HOP_SAMPLES)
        return min(MAX_FRAMES, max(int(round(window_s * 100)),
                                   -(-needed // _FRAME_MULTIPLE) * _FRAME_MULTIPLE))

    def _features(self, samples: NDArray[np.float32], frames: int) -> NDArray[np.float32]:
        """The log-mel of ``samples`` padded with silence to ``frames`` frames. Only the audio
        plus 1 s is computed: the frames after it hear only silence, whose value Whisper's
        log-mel fixes (log10 of 1e-10 clamped at the maximum - 8, then scaled) - the same
        features for a third of the work on a few seconds in a 15 s window.
        """
        needed = min(frames, math.ceil((len(samples) + _PAD_S * SAMPLE_RATE) / HOP_SAMPLES))
        padded = np.zeros(needed * HOP_SAMPLES, dtype=np.float32)
        padded[:len(samples)] = samples
        head = self._model.feature_extractor(padded, padding=HOP_SAMPLES)[:, :needed]
        if needed == frames:
            return np.ascontiguousarray(head, dtype=np.float32)
        # head = (max(log, top - 8) + 4) / 4, so its maximum is (top + 4) / 4.
        top = float(head.max()) * 4.0 - 4.0
        features = np.full((head.shape[0], frames), (max(-10.0, top - 8.0) + 4.0) / 4.0,
                           dtype=np.float32)
        features[:, :needed] = head
        return features

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

    def _align(self, tokenizer: Any, tokens: list[list[int]], encoded: Any,
               frames: list[int]) -> list[list[WordTiming]]:
        """Word timings of each clip's ``tokens`` from the decoder's cross-attention (as
        faster-whisper's word_timestamps does), punctuation attached to its word; times in
        seconds. ``frames``: each clip's mel frames without the padding.
        """
        from faster_whisper.transcribe import merge_punctuations

        out = []
        for alignment in self._model.find_alignment(tokenizer, tokens, encoded, frames):
            merge_punctuations(alignment, PREPEND_PUNCTUATION, APPEND_PUNCTUATION)
            out.append([WordTiming(float(w["start"]), float(w["end"]), str(w["word"]).strip(),
                                   float(w["probability"]))
                        for w in alignment if str(w["word"]).strip()])
        return out


@dataclass
class _Text:
    """One decoded clip before alignment and guards."""

    text: str
    tokens: list[int]
    """Its text tokens (the prefix included), no special tokens."""
    language: str | None
    language_probability: float


class _Decoder:
    """The prompt, token budget and verdicts of the fast pass for one set of settings."""

    def __init__(self, tokenizer: Any, model: Any, kwargs: dict[str, Any],
                 options: WhisperOptions, final: bool) -> None:
        self.tokenizer = tokenizer
        self._options = options
        self._final = final
        self._words = bool(final and kwargs.get("word_timestamps"))
        previous: list[int] = []
        if kwargs.get("initial_prompt"):
            previous = tokenizer.encode(" " + str(kwargs["initial_prompt"]).strip())
        prefix = str(kwargs["prefix"]) if kwargs.get("prefix") else None
        hotwords = str(kwargs["hotwords"]) if kwargs.get("hotwords") else None
        self.prompt: list[int] = model.get_prompt(tokenizer, previous, without_timestamps=True,
                                                  prefix=prefix, hotwords=hotwords)
        # faster-whisper drops the hotwords when there is a prefix: the prompt without the
        # prefix must do the same, or the prefix's length comes out wrong.
        self._n_prefix = len(self.prompt) - len(model.get_prompt(
            tokenizer, previous, without_timestamps=True, hotwords=None if prefix else hotwords))

    def max_length(self, samples: int) -> int:
        """The decoder's length limit (prompt included) for ``samples`` of audio."""
        seconds = samples / SAMPLE_RATE
        # The budget is for the whole text; the prefix is part of the prompt already.
        budget = max(16, int(seconds * self._options.fast_max_tokens_per_s) + 16
                     - self._n_prefix)
        return min(_MAX_TOKENS, len(self.prompt) + budget)

    def finish(self, result: Any, samples: int, language: str | None,
               language_probability: float) -> _Text | None:
        """The text of one generate() result; None for a doubtful final (see FastPass.run)."""
        tokenizer = self.tokenizer
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]  # prefix included
        generated = max(0, len(tokens) - self._n_prefix)
        avg_logprob = float(result.scores[0]) * generated / (generated + 1)
        text = tokenizer.decode(tokens).strip()
        if looks_like_no_speech(float(result.no_speech_prob), avg_logprob, self._options,
                                text):
            logger.debug("fast pass: dropped text that looks like no speech (no_speech_prob "
                         "%.2f, avg_logprob %.2f): %r", result.no_speech_prob, avg_logprob,
                         text)
            return _Text("", [], language, language_probability)
        if self._final and doubtful(
                text, avg_logprob,
                len(self.prompt) + generated + 1 >= self.max_length(samples), self._options):
            return None
        return _Text(text, tokens, language, language_probability)

    def wants_words(self, text: _Text) -> bool:
        """Whether ``text`` gets word timings (a final with word_timestamps and text)."""
        return self._words and bool(text.tokens)

    def output(self, text: _Text, words: list[WordTiming]) -> EngineOutput:
        """The guarded engine output."""
        if not text.tokens:
            return EngineOutput(text="", language=text.language,
                                language_probability=float(text.language_probability))
        kept, kept_words = guard_text(text.text, words, self._options)
        return EngineOutput(text=kept, language=text.language,
                            language_probability=float(text.language_probability),
                            words=tuple(kept_words))
