"""Entry point of the engine process: ``python -m harken.worker`` (see harken.worker.child)."""

from __future__ import annotations

from harken.worker.child import main

raise SystemExit(main())
