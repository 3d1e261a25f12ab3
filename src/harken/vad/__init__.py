"""harken.vad."""
