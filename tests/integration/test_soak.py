"""A reduced soak: 20 minutes of audio through a Recorder, checked for loss and leaks.

benchmarks/soak.py does the full hour and prints the figures; this runs the same code on 20
minutes of audio (400 utterances; about 3 s of wall time here, as the scripted
engine and the energy VAD run hundreds of times faster than real time). 20 minutes rather
than 2-3 because it costs little and makes a leak visible: keeping every utterance's audio
would grow the parent by ~77 MB over 20 minutes, far above the noise of the allocator and the
audio backlog (~15 MB).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

MINUTES = 20


def _load_soak() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"
    if str(path.parent) not in sys.path:  # for its sibling module machine_info
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("harken_bench_soak", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_twenty_minutes_of_audio_lose_nothing_and_leak_nothing() -> None:
    soak = _load_soak()
    result = soak.run_soak(MINUTES)
    assert result.errors == []
    assert result.utterances == MINUTES * 20
    assert result.lost == 0 and result.duplicated == 0, \
        f"lost {result.lost}, duplicated {result.duplicated} of {result.utterances}"
    # Faster than real time, by a wide margin even on 2 loaded cores.
    assert result.speed > 10, f"only {result.speed:.1f}x real time"
    steady = result.samples[1:]  # after the first minute: everything is started
    for name, jitter in (("threads", 0), ("fds", 1), ("children", 0)):
        values = [getattr(s, name) for s in steady]
        assert max(values) - min(values) <= jitter, f"{name} not flat: {values}"
    assert steady[0].children == 1  # the one engine process, never replaced
    rss = [s.rss_mb for s in steady]
    growth = max(rss[-3:]) - rss[0]
    assert growth < 25.0, f"RSS grew {growth:.1f} MB over {MINUTES} min of audio: {rss}"
