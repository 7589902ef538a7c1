"""Tests of scoring/statistics."""
