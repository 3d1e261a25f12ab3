"""harken.audio."""
