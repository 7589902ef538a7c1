"""Assisted answering: helpers, paper forms and their upload."""
