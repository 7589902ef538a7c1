"""The quizzes' state on the app."""

from __future__ import annotations

from aiohttp import web

from scoring.quizzes.leaderboards import Leaderboards
from scoring.quizzes.writer import AttemptWriter

ATTEMPT_WRITER = web.AppKey("attempt_writer", AttemptWriter)
LEADERBOARDS = web.AppKey("leaderboards", Leaderboards)
