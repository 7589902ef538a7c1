"""county."""
