"""harken.core."""
