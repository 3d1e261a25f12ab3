"""A reduced soak: 20 minutes of audio through a Recorder, checked for loss and leaks.

benchmarks/soak.py does the full hour and prints the figures; both run harken.testing.soak,
this test on 20 minutes of audio (400 utterances; about 3 s of wall time here, as the
scripted engine and the energy VAD run hundreds of times faster than real time). 20 minutes rather
than 2-3 because it costs little and makes a leak visible: keeping every utterance's audio
would grow the parent by ~77 MB over 20 minutes, far above the noise of the allocator and the
audio backlog (~15 MB).
"""

from __future__ import annotations

from harken.testing import soak

MINUTES = 20


def test_twenty_minutes_of_audio_lose_nothing_and_leak_nothing() -> None:
    result = soak(MINUTES, engine="scripted", vad="energy")
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
