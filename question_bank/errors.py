"""The question bank's domain errors (mapped to HTTP by the server's error middleware)."""

from __future__ import annotations

from server.errors import Conflict, Forbidden, NotFound


class QuestionNotFound(NotFound):
    code = "question_not_found"
    message = "题目不存在或已删除"


class StaleVersion(Conflict):
    code = "version_conflict"
    message = "题目已被他人修改，请刷新后在最新版本上修改"


class DuplicateQuestion(Conflict):
    code = "duplicate_question"
    message = "题库中已有内容相同的题目"


class InvalidTransition(Conflict):
    code = "invalid_status"
    message = "题目当前状态不允许此操作"


class FourEyesRequired(Forbidden):
    code = "four_eyes_required"
    message = "不能发布自己最后修改的题目，请由另一位编辑审核发布"
