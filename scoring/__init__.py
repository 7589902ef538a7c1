"""Scoring, the county's geography and census margins, and literacy statistics."""
