"""The quizzes' state on the app."""

from __future__ import annotations

from aiohttp import web

from scoring.quizzes.writer import AttemptWriter

ATTEMPT_WRITER = web.AppKey("attempt_writer", AttemptWriter)
