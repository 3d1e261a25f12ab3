"""harken.cli."""
