"""``python -m harken``: the command-line interface."""

from __future__ import annotations

from .cli.main import main

raise SystemExit(main())
