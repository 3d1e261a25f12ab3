"""ReplayBuffer: what harken client sends again after a reconnect (pure, bytes in, bytes out)."""

from __future__ import annotations

import pytest

from harken.cli.replay import ReplayBuffer


def test_a_final_drops_the_audio_it_covers_and_keeps_the_rest_frame_aligned():
    buf = ReplayBuffer(bytes_per_second=100, max_seconds=10)
    for i in range(5):
        buf.append(bytes([i]) * 20)  # 0.2 s each
    assert (buf.sent_s, buf.kept_s, buf.start_s) == (1.0, 1.0, 0.0)
    buf.confirm(0.45)  # 45 bytes, cut down to the frame boundary at 44
    assert buf.start_s == 0.44 and buf.chunks()[0] == bytes([2]) * 16
    assert b"".join(buf.chunks()) == bytes([2]) * 16 + bytes([3]) * 20 + bytes([4]) * 20
    buf.confirm(0.1)  # an older final changes nothing
    assert buf.start_s == 0.44
    buf.confirm(5.0)  # past the end: nothing left, the timeline goes on
    assert buf.chunks() == [] and buf.start_s == 1.0 and buf.lost_s == 0.0


def test_overflow_drops_the_oldest_audio_and_counts_it_as_lost():
    buf = ReplayBuffer(bytes_per_second=100, max_seconds=0.8)
    for _ in range(4):
        buf.append(b"\0" * 20)
    assert buf.kept_s == 0.8 and buf.lost_s == 0.0
    buf.append(b"\0" * 20)
    buf.append(b"\0" * 20)
    assert buf.kept_s == 0.8 and buf.lost_s == pytest.approx(0.4) and buf.start_s == 0.4


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        ReplayBuffer(0, 1.0)
