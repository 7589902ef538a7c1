"""The editorial workflow's domain errors (shared by questions and articles)."""

from __future__ import annotations

from server.kernel.errors import Conflict, Forbidden


class StaleVersion(Conflict):
    code = "version_conflict"
    message = "题目已被他人修改，请刷新后在最新版本上修改"


class InvalidTransition(Conflict):
    code = "invalid_status"
    message = "题目当前状态不允许此操作"


class FourEyesRequired(Forbidden):
    code = "four_eyes_required"
    message = "不能发布自己最后修改的题目，请由另一位编辑审核发布"
