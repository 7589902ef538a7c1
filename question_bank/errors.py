"""The question bank's domain errors (mapped to HTTP by the server's error middleware)."""

from __future__ import annotations

from server.kernel.errors import Conflict, NotFound


class QuestionNotFound(NotFound):
    code = "question_not_found"
    message = "题目不存在或已删除"


class DuplicateQuestion(Conflict):
    code = "duplicate_question"
    message = "题库中已有内容相同的题目"
