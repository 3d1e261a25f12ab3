"""ScriptedEngine: a deterministic, dependency-free transcription engine for tests and demos.

It runs wherever an engine runs (normally the engine process's main thread). By default it
describes the audio it was given ("speech 1.23 s rms 0.100"), so a test can tell which audio
went where. Faults are injected through ``EngineConfig.options``:

- ``text`` (str): answer this fixed text instead of the description.
- ``load_delay_s`` (float): sleep this many seconds in ``load()`` (a slow model load).
- ``fail_load`` (str): ``load()`` raises ``RuntimeError`` with this message.
- ``log_message`` (str): ``load()`` logs this at WARNING on ``harken.engine.scripted``.
- ``delay_s`` (float): sleep this many seconds in every ``transcribe()``; then, as the fast
  pass after its encoder, ask the check given to :meth:`ScriptedEngine.set_stop_check`.
- ``fail_min_s`` (float): ``transcribe()`` raises ``RuntimeError`` for audio at least this
  many seconds long.
- ``hang_marker`` (str, a file path): the first ``transcribe()`` that finds no file at this
  path creates it and then sleeps forever (a hung engine; a restarted process does not hang).
- ``crash_marker`` (str, a file path): likewise, but the process exits at once with code 17
  (a crash; a restarted process does not crash again).
- ``print_text`` (str): ``transcribe()`` prints this to stdout, as a careless library would.

The same keys in a request's ``DecodeHints.extra`` override the configured ones for that
request; ``word_timestamps=False`` leaves the words out, as a real engine does; the other
hints are recorded (:attr:`ScriptedEngine.last_hints`) and not used.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..config import SAMPLE_RATE, EngineConfig
from ..errors import ConfigError
from .base import DecodeHints, EngineOutput, PassInterrupted, RequestKind, WordTiming

__all__ = ["CRASH_EXIT_CODE", "ScriptedEngine"]

logger = logging.getLogger(__name__)

CRASH_EXIT_CODE = 17
"""The exit code of a process crashed on purpose through the ``crash_marker`` option."""

_FLOAT_OPTIONS = ("load_delay_s", "delay_s", "fail_min_s")
_STR_OPTIONS = ("text", "fail_load", "log_message", "hang_marker", "crash_marker", "print_text")


class ScriptedEngine:
    """A fake engine with scripted answers and faults (see the module docstring).

    Args:
        config: the engine settings; only ``options`` is read.

    Raises:
        ConfigError: an option has the wrong type or a negative duration.
    """

    def __init__(self, config: EngineConfig) -> None:
        self._options: dict[str, Any] = _checked(config.options)
        self.loaded = False
        self.calls = 0
        """How many transcribe() calls this instance has served."""
        self.last_hints: DecodeHints | None = None
        """The hints of the latest transcribe() call."""
        self._stop_check: Callable[[RequestKind], bool] | None = None

    def load(self) -> None:
        """Pretend to load a model, honouring ``load_delay_s``, ``fail_load``, ``log_message``."""
        delay = float(self._options.get("load_delay_s", 0.0))
        if delay:
            time.sleep(delay)
        if self._options.get("log_message"):
            logger.warning("%s", self._options["log_message"])
        if self._options.get("fail_load") is not None:
            raise RuntimeError(self._options["fail_load"])
        self.loaded = True

    def info(self) -> dict[str, Any]:
        """Facts for the engine process's "ready" message."""
        return {"engine": "scripted", "model": "scripted", "device": "cpu",
                "compute_type": "none"}

    def set_stop_check(self, check: Callable[[RequestKind], bool] | None) -> None:
        """As ``FasterWhisperEngine.set_stop_check``: after its ``delay_s``, a request
        raises :class:`~harken.engine.base.PassInterrupted` when ``check(kind)`` is then True.
        """
        self._stop_check = check

    def transcribe(self, audio: NDArray[np.float32], *, kind: RequestKind = "final",
                   hints: DecodeHints | None = None) -> EngineOutput:
        """Describe ``audio`` (float32 mono 16 kHz), or apply the scripted fault.

        Args:
            audio: float32 mono samples at 16 kHz.
            kind: "final" or "partial" (not used for the answer).
            hints: ``extra`` overrides the configured options for this request (e.g.
                ``text``); ``word_timestamps=False`` leaves the words out; the other hints
                are only recorded in :attr:`last_hints`.

        Returns:
            The scripted text, with one word per token spread evenly over the audio.

        Raises:
            ConfigError: ``hints.extra`` holds an option of the wrong type.
        """
        self.calls += 1
        self.last_hints = hints
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = len(samples) / SAMPLE_RATE
        merged = {**self._options, **_checked(hints.extra if hints else {})}
        if merged.get("print_text"):
            print(merged["print_text"], flush=True)
            sys.stdout.flush()
        for marker, action in (("crash_marker", "crash"), ("hang_marker", "hang")):
            path = merged.get(marker)
            if path and not os.path.exists(path):
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(f"{action} in process {os.getpid()}\n")
                if action == "crash":
                    os._exit(CRASH_EXIT_CODE)
                while True:  # hang until killed
                    time.sleep(3600)
        delay = float(merged.get("delay_s", 0.0))
        if delay:
            time.sleep(delay)
            if self._stop_check is not None and self._stop_check(kind):
                raise PassInterrupted("stopped after the delay")
        fail_min = merged.get("fail_min_s")
        if fail_min is not None and duration >= float(fail_min):
            raise RuntimeError(f"scripted failure: {duration:.2f} s of audio is at least "
                               f"fail_min_s={fail_min} s")
        if merged.get("text") is not None:
            text = str(merged["text"])
        else:
            rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(
                samples) else 0.0
            text = f"speech {duration:.2f} s rms {rms:.3f}"
        tokens = text.split()
        step = duration / len(tokens) if tokens else 0.0
        words = () if hints is not None and hints.word_timestamps is False else tuple(
            WordTiming(round(i * step, 3), round((i + 1) * step, 3), token, 1.0)
            for i, token in enumerate(tokens))
        return EngineOutput(text=text, language="en", language_probability=1.0, words=words)

    def close(self) -> None:
        """Forget the pretend model."""
        self.loaded = False


def _checked(options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``options``; raises ConfigError for a known option of the wrong type."""
    for name in _FLOAT_OPTIONS:
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or
                                  not isinstance(value, (int, float)) or value < 0):
            raise ConfigError(f"scripted engine option {name} must be a number of "
                              f"seconds >= 0, got {value!r}")
    for name in _STR_OPTIONS:
        value = options.get(name)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"scripted engine option {name} must be a string, "
                              f"got {value!r}")
    return dict(options)
