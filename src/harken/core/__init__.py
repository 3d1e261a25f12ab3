"""The pure core: segmentation and the speech pipeline (no I/O, no clock, no threads).

- :mod:`~harken.core.pipeline`: :class:`SpeechPipeline`, audio in, events and requests out;
- :mod:`~harken.core.segmenter`: speech frames to utterances;
- :mod:`~harken.core.wake_router`: which utterances are commands (with wake words);
- :mod:`~harken.core.stabilizer`: partial text that stays put;
- :mod:`~harken.core.final_order`: finals released in utterance order;
- :mod:`~harken.core.outputs`: what the pipeline hands back besides events.
"""

from __future__ import annotations

from .pipeline import Output, SpeechPipeline
from .segmenter import Segment, Segmenter, UtteranceEnded, UtteranceStarted

__all__ = ["Output", "Segment", "Segmenter", "SpeechPipeline", "UtteranceEnded",
           "UtteranceStarted"]
