"""harken.sources."""
