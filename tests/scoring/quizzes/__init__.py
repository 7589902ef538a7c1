"""Tests of scoring/quizzes."""
