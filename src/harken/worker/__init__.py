"""harken.worker."""
