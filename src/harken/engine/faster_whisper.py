"""FasterWhisperEngine: speech to text with faster-whisper (CTranslate2).

Runs inside the engine process, on its main thread; one call at a time (a WhisperModel is not
shared between threads here). ``faster_whisper`` is imported in :meth:`load`, never at import.
Segments are materialised inside :meth:`transcribe`, so nothing lazy leaves this module.

Two passes. The plain pass is ``WhisperModel.transcribe``, which pads every input to a 30 s
window. The fast pass (:mod:`harken.engine.whisper.fast_pass`) encodes only the audio plus
1 s of silence in a window of at least 10 s (partials) or 12 s (finals) and decodes without
timestamp tokens. Both partials and finals take the fast pass by default; on 2 CPU cores it
costs 0.3-0.4 of the plain pass for 1-8 s of speech with no worse WER
(``benchmarks/engine_speed.py``). A final whose fast decode is doubtful is decoded again by
the plain pass, whose temperature fallback exists for that. The hallucination guards
(:mod:`harken.engine.whisper.guards`) apply to both passes.

This class is the one place that maps a request's :class:`~harken.engine.base.DecodeHints`
to faster-whisper: ``quality`` "standard" takes the plain pass, "fast" the fast pass,
"cheap" the fast pass in its own window (``fast_cheap_min_window_s``, 10 s like the
partials') with greedy decoding (unless a beam is hinted), several at once where they wait
together (:meth:`FasterWhisperEngine.transcribe_batch`);
no quality follows the ``fast_partials``/``fast_finals`` options. The other hints become
``WhisperModel.transcribe`` keyword arguments; ``extra`` holds per-request options in the
``EngineConfig.options`` form (:class:`~harken.engine.whisper.options.WhisperOptions`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import SAMPLE_RATE, EngineConfig
from ..errors import (
    AudioFormatError,
    BackendNotInstalled,
    ConfigError,
    CudaUnavailable,
    LifecycleError,
)
from ..text.chinese import ChineseScript, NumeralStyle
from ..text.units import join_units
from .base import DecodeHints, EngineOutput, RequestKind, WordTiming
from .whisper.cuda import cuda_problem
from .whisper.fast_pass import FastPass
from .whisper.guards import (
    compression_ratio,
    guard_text,
    has_words,
    kept_word_indices,
    looks_like_no_speech,
    trim_repeats,
)
from .whisper.languages import in_script, pick_language
from .whisper.models import EMBEDDED_MODEL, resolve_model
from .whisper.options import WhisperOptions

__all__ = ["EMBEDDED_MODEL", "FasterWhisperEngine", "WhisperOptions", "compression_ratio",
           "kept_word_indices", "resolve_model", "trim_repeats"]

logger = logging.getLogger(__name__)

_HINTED_KWARGS = ("beam_size", "word_timestamps", "language", "initial_prompt", "prefix",
                  "hotwords")
"""DecodeHints fields passed on as the ``WhisperModel.transcribe`` keyword of that name."""


class FasterWhisperEngine:
    """The faster-whisper transcription engine.

    Args:
        config: the engine settings (model, device, compute_type, cpu_threads, beam_size,
            language, initial_prompt, word_timestamps, download_root, local_files_only and
            ``options``: harken's pass and guard options plus extra
            ``WhisperModel.transcribe`` keyword arguments, see
            :class:`~harken.engine.whisper.options.WhisperOptions`).
        model: an already built ``WhisperModel`` (or a stand-in with the same ``transcribe``);
            :meth:`load` then builds nothing.

    Raises:
        ConfigError: an option in ``config.options`` is unknown or has a wrong type or value.
    """

    def __init__(self, config: EngineConfig, *, model: Any = None) -> None:
        self._options = WhisperOptions.from_dict(config.options)
        self._config = config
        self._model: Any = model
        self._model_path: str | None = None
        self._fast: FastPass | None = None
        self._stop_check: Callable[[RequestKind], bool] | None = None
        self._script: ChineseScript | None = config.chinese_script  # type: ignore[assignment]
        self._numerals: NumeralStyle | None = config.numerals  # type: ignore[assignment]

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
        device = self._device()
        logger.info("loading faster-whisper model %s on %s (%s)", self._model_path,
                    device, cfg.compute_type)
        self._model = faster_whisper.WhisperModel(
            self._model_path, device=device, compute_type=cfg.compute_type,
            cpu_threads=cfg.cpu_threads, download_root=cfg.download_root,
            local_files_only=cfg.local_files_only)

    def _device(self) -> str:
        """The device to load on: "cuda" only when CUDA works (see :mod:`.whisper.cuda`);
        "auto" becomes "cpu" when a GPU is seen but its libraries are missing.

        Raises:
            CudaUnavailable: ``device="cuda"`` and no GPU, driver, cuBLAS or cuDNN.
        """
        device = self._config.device
        if device == "cpu":
            return device
        import ctranslate2

        if device == "auto" and ctranslate2.get_cuda_device_count() < 1:
            return device  # CTranslate2 picks the CPU itself
        problem = cuda_problem()
        if problem is None:
            return device
        if device == "cuda":
            raise CudaUnavailable(problem)
        logger.warning("device='auto' runs on the CPU: %s", problem)
        return "cpu"

    def info(self) -> dict[str, Any]:
        """Facts for the engine process's "ready" message (model path and languages once loaded)."""
        cfg = self._config
        info: dict[str, Any] = {"engine": "faster-whisper",
                                "model": self._model_path or cfg.model,
                                "device": cfg.device, "compute_type": cfg.compute_type,
                                "max_batch": self.max_batch}
        languages = getattr(self._model, "supported_languages", None)
        if isinstance(languages, (list, tuple)):
            # ["en"] for *.en models; narrowed to config.languages (or the one fixed
            # language) where the settings restrict them.
            codes = [str(code) for code in languages]
            wanted = (cfg.language,) if cfg.language else cfg.languages
            info["languages"] = [c for c in codes if c in wanted] if wanted else codes
            info["model_languages"] = codes  # what a request's hints may ask for
        return info

    def transcribe(self, audio: NDArray[np.float32], *, kind: RequestKind = "final",
                   hints: DecodeHints | None = None) -> EngineOutput:
        """Transcribe float32 mono 16 kHz audio.

        Settings come from the config (beam_size, language, initial_prompt,
        word_timestamps), then ``config.options``, then ``hints.extra``, then the other
        hints; later ones win. ``condition_on_previous_text`` and ``vad_filter`` default to
        False (harken segments speech itself). The pass follows the hinted quality (see the
        module docstring); a fast pass needs the audio to fit one 30 s window.

        Args:
            audio: float32 mono samples at 16 kHz.
            kind: "final" or "partial"; chooses the pass when no quality is hinted.
            hints: how this request would like to be decoded.

        Returns:
            The stripped text of the kept segments joined by spaces, the language and, with
            word_timestamps (on by default), the words with times in seconds from the start
            of ``audio``.

        Raises:
            LifecycleError: :meth:`load` was not called.
            AudioFormatError: ``audio`` is not one-dimensional.
            ConfigError: ``hints.extra`` holds an unknown or invalid option.
        """
        if self._model is None:
            raise LifecycleError("FasterWhisperEngine.transcribe() called before load()")
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise AudioFormatError(f"audio must be mono (one dimension), got shape "
                                   f"{samples.shape}")
        hints = hints or DecodeHints()
        options = self._options.updated(hints.extra, where="DecodeHints.extra")
        if len(samples) == 0:
            return EngineOutput("")
        kwargs = self._kwargs(options, hints)
        allowed = self._config.languages if hints.languages is None else hints.languages
        window_s = options.fast_window_s(hints.quality, kind)
        fast = window_s is not None and FastPass.supports(self._model) \
            and FastPass.fits(len(samples))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("transcribing %.2f s (%s, %s pass) with %s", len(samples) / SAMPLE_RATE,
                         kind, "fast" if fast else "plain", kwargs)
        samples = np.ascontiguousarray(samples)
        if fast and window_s is not None:
            if self._fast is None:
                self._fast = FastPass(self._model)
            check = self._stop_check
            output = self._fast.run(samples, kwargs, options, window_s=window_s,
                                    final=kind == "final", languages=allowed,
                                    stop=None if check is None else lambda: check(kind))
            if output is not None:
                return in_script(output, self._script, self._numerals)
            logger.debug("fast final pass was doubtful: running the plain pass")
        return in_script(self._plain_pass(samples, kwargs, options, allowed), self._script,
                         self._numerals)

    def set_stop_check(self, check: Callable[[RequestKind], bool] | None) -> None:
        """Let a fast pass stop after its encoder: ``check(kind)`` is asked then, and True
        raises :class:`~harken.engine.base.PassInterrupted` instead of decoding (the engine
        process says "a final is queued" to a partial, "cancelled meanwhile" to any request:
        a final then waits for a partial's encoder only, and a revoked early final costs its
        encoder only). None: every pass runs to the end.
        """
        self._stop_check = check

    @property
    def max_batch(self) -> int:
        """Most requests :meth:`transcribe_batch` decodes together (``batch_cheap_finals``)."""
        return self._options.batch_cheap_finals

    def transcribe_batch(self, items: Sequence[tuple[NDArray[np.float32], DecodeHints]]
                         ) -> list[EngineOutput | None]:
        """Transcribe the "cheap" finals among ``items`` that share their settings, in one batch.

        A batch decodes each clip as :meth:`transcribe` would in the batch's window (the
        longest clip's). Nothing else runs here, so the caller can answer the batch at once
        and then transcribe the rest alone with :meth:`transcribe` (skipping any withdrawn
        meanwhile): a clip whose batch decode was doubtful (its plain pass costs seconds),
        and anything that cannot share the batch (another quality, other settings, a clip
        too long, a language to detect, fewer than two cheap finals).

        Args:
            items: (float32 mono 16 kHz audio, hints) per final request.

        Returns:
            Per item, in order, its output, or None: transcribe it alone.

        Raises:
            LifecycleError: :meth:`load` was not called.
        """
        if self._model is None:
            raise LifecycleError("FasterWhisperEngine.transcribe_batch() called before load()")
        results: list[EngineOutput | None] = [None] * len(items)
        batch: list[int] = []
        shared: tuple[WhisperOptions, dict[str, Any]] | None = None
        for i, (audio, hints) in enumerate(items):
            try:
                options = self._options.updated(hints.extra, where="DecodeHints.extra")
            except ConfigError:
                continue  # transcribe() says why
            kwargs = self._kwargs(options, hints)
            samples = np.asarray(audio, dtype=np.float32)
            if hints.quality == "cheap" and samples.ndim == 1 and len(samples) \
                    and FastPass.supports(self._model) and FastPass.fits(len(samples)) \
                    and FastPass.batchable(self._model, kwargs) \
                    and (shared is None or shared == (options, kwargs)):
                shared = (options, kwargs)
                batch.append(i)
        if len(batch) < 2 or shared is None:
            return results
        options, kwargs = shared
        if self._fast is None:
            self._fast = FastPass(self._model)
        clips = [np.ascontiguousarray(items[i][0], dtype=np.float32) for i in batch]
        try:
            outputs = self._fast.run_batch(clips, kwargs, options,
                                           window_s=options.fast_cheap_min_window_s, final=True)
        except Exception as exc:  # each clip alone then says what is wrong with it
            logger.warning("a batch of %d finals failed (%s); transcribing each alone",
                           len(batch), exc)
            return results
        for i, output in zip(batch, outputs, strict=True):
            results[i] = None if output is None else in_script(output, self._script,
                                                                self._numerals)
        return results

    def _kwargs(self, options: WhisperOptions, hints: DecodeHints) -> dict[str, Any]:
        """The ``WhisperModel.transcribe`` keyword arguments of one request."""
        cfg = self._config
        kwargs: dict[str, Any] = {
            "beam_size": cfg.beam_size,
            "language": cfg.language,
            "initial_prompt": cfg.initial_prompt,
            "word_timestamps": cfg.word_timestamps,
            "condition_on_previous_text": False,
            "vad_filter": False,
            **options.transcribe_kwargs(),
        }
        if hints.quality == "cheap":
            kwargs["beam_size"] = 1
        for name in _HINTED_KWARGS:
            value = getattr(hints, name)
            if value is not None:
                kwargs[name] = value
        return kwargs

    def _plain_pass(self, samples: NDArray[np.float32], kwargs: dict[str, Any],
                    options: WhisperOptions, allowed: tuple[str, ...]) -> EngineOutput:
        detected: tuple[str, float] | None = None
        if allowed and kwargs.get("language") is None \
                and getattr(self._model, "model", None) is not None \
                and self._model.model.is_multilingual:
            detected = pick_language(self._model.detect_language(samples)[2], allowed)
            kwargs = {**kwargs, "language": detected[0]}
        segments, info = self._model.transcribe(samples, **kwargs)
        texts: list[str] = []
        words: list[WordTiming] = []
        for segment in segments:  # materialise the lazy generator here
            piece = segment.text.strip()
            if not has_words(piece):  # empty, or only punctuation (". . .")
                continue
            no_speech = float(getattr(segment, "no_speech_prob", 0.0))
            avg_logprob = float(getattr(segment, "avg_logprob", 0.0))
            if looks_like_no_speech(no_speech, avg_logprob, options, piece):
                logger.debug("dropped a segment that looks like no speech "
                             "(no_speech_prob %.2f, avg_logprob %.2f): %r",
                             no_speech, avg_logprob, piece)
                continue
            texts.append(piece)
            for word in segment.words or ():
                words.append(WordTiming(float(word.start), float(word.end),
                                        word.word.strip(), float(word.probability)))
        text, kept_words = guard_text(join_units(texts), words, options)
        language, probability = detected or (info.language, info.language_probability)
        return EngineOutput(text=text, language=language,
                            language_probability=float(probability), words=tuple(kept_words))

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self._model = None
        if self._fast is not None:
            self._fast.close()
            self._fast = None
