"""Tests of server/kernel."""
