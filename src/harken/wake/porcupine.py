"""Porcupine wake word detector (``pvporcupine==1.9.5``: offline, built-in keywords).

Porcupine 1.9.5 needs no access key and ships keyword models for a fixed list of words
(:data:`BUILTIN_KEYWORDS`); a user may also give ``.ppn`` keyword files. It takes 512 int16
samples at 16 kHz per call, the same frame the VAD uses. ``pvporcupine`` is imported in
:meth:`PorcupineDetector.load`. Runs on the recorder's pipeline thread.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import BackendNotInstalled, ConfigError
from ..units import FRAME_SAMPLES, SAMPLE_RATE
from .base import values_per_keyword
from .names import PORCUPINE_KEYWORDS, is_model_file, porcupine_keyword

__all__ = ["BUILTIN_KEYWORDS", "PorcupineDetector"]

log = logging.getLogger(__name__)

BUILTIN_KEYWORDS = PORCUPINE_KEYWORDS
"""Keywords built into pvporcupine 1.9.5 (the table lives in :mod:`harken.wake.names`)."""


def _is_file(word: str) -> bool:
    return is_model_file(word, ".ppn")


class PorcupineDetector:
    """Detects Porcupine keywords, frame by frame.

    Args:
        keywords: built-in keyword names (see :data:`BUILTIN_KEYWORDS`; case and extra spaces
            are ignored) or paths of ``.ppn`` keyword files.
        sensitivities: one per keyword, or one for all, each 0..1; higher detects more and
            false-triggers more. Default 0.5.
        porcupine: an already created ``pvporcupine.Porcupine`` (tests); load() then
            creates nothing.

    Raises:
        ConfigError: an unknown keyword or a bad sensitivity.
    """

    def __init__(self, keywords: Sequence[str], sensitivities: Sequence[float] | float = 0.5,
                 *, porcupine: Any = None) -> None:
        if isinstance(keywords, str) or not keywords:
            raise ConfigError(f"keywords must be a non-empty list of names, got {keywords!r}")
        names = [porcupine_keyword(word) for word in keywords]
        sens = values_per_keyword(
            sensitivities, len(names), ok=lambda s: 0.0 <= s <= 1.0,
            error=f"Porcupine needs one sensitivity from 0 to 1 per keyword ({len(names)}), "
                  f"got {sensitivities!r}")
        self._names = tuple(names)
        self._sensitivities = tuple(sens)
        self._porcupine = porcupine
        self._owned = porcupine is None

    @property
    def keywords(self) -> tuple[str, ...]:
        """Keyword names as reported by :meth:`process` (file paths as their stem)."""
        return tuple(os.path.basename(n).split("_")[0].removesuffix(".ppn") if _is_file(n)
                     else n for n in self._names)

    def load(self) -> None:
        """Create the Porcupine engine.

        Raises:
            BackendNotInstalled: pvporcupine is missing.
            ConfigError: a keyword file does not exist.
        """
        if self._porcupine is not None:
            return
        try:
            pvporcupine = importlib.import_module("pvporcupine")
        except ImportError as exc:
            missing = BackendNotInstalled("pvporcupine", "porcupine",
                                          "The Porcupine wake word backend")
            # No extra can install it: its metadata pulls enum34, which breaks Python 3.
            missing.msg = (
                "The Porcupine wake word backend needs the 'pvporcupine' package, which is "
                "not installed. Install it with: pip install --no-deps pvporcupine==1.9.5")
            missing.args = (missing.msg,)
            raise missing from exc
        paths: list[str] = []
        for name in self._names:
            if _is_file(name):
                if not os.path.isfile(name):
                    raise ConfigError(f"Porcupine keyword file {name!r} does not exist; "
                                      "give the path of an existing .ppn file")
                paths.append(name)
            else:
                builtin = getattr(pvporcupine, "KEYWORD_PATHS", {})
                if name not in builtin:
                    raise ConfigError(
                        f"this pvporcupine has no built-in keyword {name!r} (it has "
                        f"{', '.join(sorted(builtin))}); harken supports pvporcupine==1.9.5")
                paths.append(builtin[name])
        self._porcupine = pvporcupine.create(keyword_paths=paths,
                                             sensitivities=list(self._sensitivities))
        self._owned = True
        frame, rate = self._porcupine.frame_length, self._porcupine.sample_rate
        if frame != FRAME_SAMPLES or rate != SAMPLE_RATE:
            self.close()
            raise ConfigError(f"this pvporcupine wants {frame} samples at {rate} Hz per "
                              f"frame; harken supports pvporcupine==1.9.5 (512 at 16000 Hz)")
        log.debug("Porcupine loaded: %s", ", ".join(self.keywords))

    def process(self, frame: NDArray[np.float32]) -> str | None:
        """Judge one frame of 512 float32 samples at 16 kHz; return the keyword heard or None."""
        if self._porcupine is None:
            raise RuntimeError("PorcupineDetector.process() called before load()")
        pcm = (np.clip(frame, -1.0, 1.0) * 32767.0).astype(np.int16)
        index = int(self._porcupine.process(pcm))
        return self.keywords[index] if index >= 0 else None

    def reset(self) -> None:
        """Porcupine keeps only a short internal window; nothing to forget."""

    def close(self) -> None:
        """Release the engine. Idempotent."""
        porcupine, self._porcupine = self._porcupine, None
        if porcupine is not None and self._owned:
            porcupine.delete()
