"""Integrity screening of stored attempts: pure detectors of answers that are not the resident's own."""
