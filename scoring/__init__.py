"""Scoring, the county's geography and census margins, and literacy statistics."""

import server  # noqa: F401  (limits numpy's BLAS threads before numpy is first imported)
