"""End-of-turn models: the protocol, and Smart Turn v3.2 run with onnxruntime.

Importing this package imports no backend: :class:`SmartTurnModel` resolves on first
access and imports onnxruntime only in ``load()``. The policy that uses a model's answer
is pure and lives in :mod:`harken.core.turn`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .base import TurnModel

__all__ = ["SmartTurnModel", "TurnModel", "find_smart_turn_model"]

_LAZY: dict[str, str] = {
    "SmartTurnModel": "harken.turn.smart_turn",
    "find_smart_turn_model": "harken.turn.smart_turn",
}

if TYPE_CHECKING:  # pragma: no cover
    from .smart_turn import SmartTurnModel, find_smart_turn_model

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
