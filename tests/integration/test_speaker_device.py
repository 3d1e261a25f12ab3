"""The Speaker's sound-card sink through PortAudio, heard back by the virtual microphone.

Needs the PulseAudio null sink made default by ``.ci/virtual-mic`` (its monitor is the
default source): what the speaker plays on the default output device must come out of the
microphone, in time, and stop() must silence it.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_microphone import FRAME, RecordingSink, _envelope, _wait_for, virtual_mic

from harken.sources import MicrophoneSource
from harken.speak import Speaker

pytestmark = pytest.mark.mic
__all__ = ["virtual_mic"]  # the fixture, imported for this module's tests


def test_device_sink_plays_into_the_default_output_and_stop_silences_it(virtual_mic) -> None:
    sink = RecordingSink()
    source = MicrophoneSource(block_ms=20)
    source.start(sink)
    try:
        assert _wait_for(lambda: sink.samples >= 8000, 10), "no audio from the microphone"
        with Speaker(engine="tone", sink="device", sample_rate=48000) as speaker:
            report = speaker.say("one two three four five", timeout=30)
            assert report.complete
            time.sleep(0.5)
            played_until = sink.samples
            speaker.speak(" ".join(["word"] * 30))  # six seconds of beeps
            time.sleep(1.0)
            stopped = speaker.stop()
            stopped_at = sink.samples
            time.sleep(1.0)
        audio = sink.audio()
    finally:
        source.close()
    loud = _envelope(audio[:played_until]) > 0.02
    # Five 133 ms beeps: about 0.67 s of tone heard (PulseAudio latency aside).
    assert 0.4 < loud.sum() * FRAME / 16000 < 1.2
    assert stopped.interrupted and 0 < stopped.delivered_s < 2.0
    tail = _envelope(audio[stopped_at + 8000:])  # half a second after stop(): silence
    assert tail.size > 0 and float(np.max(tail)) < 0.02
