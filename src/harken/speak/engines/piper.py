"""Piper neural voices (pip ``piper-tts``, GPL-3.0-or-later; an optional extra).

Imported only inside the speech engine program. Piper yields one chunk per sentence; the
speaker already sends one sentence or clause per request, so a request is one chunk.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...errors import BackendNotInstalled, ConfigError
from ..voices import PIPER_VOICE_PACKAGES

__all__ = ["PiperEngine"]


class PiperEngine:
    """A Piper voice.

    Args:
        voice: a name of :data:`~harken.speak.voices.PIPER_VOICE_PACKAGES` or a path to a
            Piper ``.onnx`` voice (its ``.onnx.json`` beside it).
        noise_scale: Piper's generator noise (None: the voice's own setting).
        noise_w_scale: Piper's phoneme width noise (None: the voice's own setting).
        volume: a gain on the (normalised) audio, 0 to 1.
    """

    def __init__(self, voice: str, *, noise_scale: float | None = None,
                 noise_w_scale: float | None = None, volume: float = 1.0) -> None:
        self._voice_name = voice
        self._noise_scale = noise_scale
        self._noise_w_scale = noise_w_scale
        self._volume = float(volume)
        self._voice: Any = None
        self.sample_rate = 22050

    def _paths(self) -> tuple[Path, Path]:
        if self._voice_name.endswith(".onnx"):
            model = Path(self._voice_name)
            return model, Path(f"{model}.json")
        package = PIPER_VOICE_PACKAGES.get(self._voice_name)
        if package is None:
            raise ConfigError(f"unknown Piper voice {self._voice_name!r}")
        module = importlib.import_module(package)
        return Path(module.model_path()), Path(module.config_path())

    def load(self) -> None:
        """Load the voice's ONNX model (about 1 s on 2 cores)."""
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise BackendNotInstalled("piper-tts", "piper", "the Piper voice") from exc
        model, config = self._paths()
        self._voice = PiperVoice.load(model, config)
        self.sample_rate = int(self._voice.config.sample_rate)

    def synthesize(self, text: str, speed: float) -> Iterator[NDArray[np.float32]]:
        """Yield one float32 chunk per sentence Piper finds in ``text``."""
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=1.0 / speed, noise_scale=self._noise_scale,
                                 noise_w_scale=self._noise_w_scale, volume=self._volume)
        for chunk in self._voice.synthesize(text, config):
            yield np.asarray(chunk.audio_float_array, dtype=np.float32)

    def close(self) -> None:
        """Drop the model."""
        self._voice = None
