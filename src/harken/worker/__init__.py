"""The engine process: wire protocol, child program and the parent-side supervisor.

Importing this package does nothing; :class:`harken.worker.process.EngineProcess` starts
``python -m harken.worker`` as its own program when ``start()`` is called.
"""

from __future__ import annotations

__all__: list[str] = []
