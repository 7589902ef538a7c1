"""Tests of scoring/assessment."""
