"""The synchronous recorder: :class:`Recorder` and its private parts, one module each.

- :mod:`~harken.recorder.facade`: :class:`Recorder`, its lifecycle and public methods;
- :mod:`~harken.recorder.wiring`: builds the source, VAD and wake word backend at start();
- :mod:`~harken.recorder.loop`: the "harken-pipeline" thread's work;
- :mod:`~harken.recorder.inbox`: that thread's two-lane queue;
- :mod:`~harken.recorder.dispatch`: the "harken-dispatch" thread that calls callbacks;
- :mod:`~harken.recorder.callbacks`: which named callback an event calls, with what;
- :mod:`~harken.recorder.finals`: the queue behind ``Recorder.next_final()``.

Only :class:`Recorder` (and the :data:`Callback` type) are public; ``from harken import
Recorder`` and ``from harken.recorder import Recorder`` name the same class. Importing this
package starts nothing.
"""

from __future__ import annotations

from .callbacks import Callback
from .facade import Recorder

__all__ = ["Callback", "Recorder"]
