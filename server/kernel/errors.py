"""The one exception hierarchy every domain raises; `middlewares.error_middleware` maps it to
the JSON error body of API.md. Nothing below the routes raises `web.HTTP*`."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.code = code or type(self).code
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(ApiError):
    pass


class ValidationFailed(ApiError):
    status = 422
    code = "validation_error"
    message = "请求内容不符合要求，请按提示修改"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    message = "请先登录"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    message = "没有权限执行此操作"


class NotFound(ApiError):
    status = 404
    code = "not_found"
    message = "找不到请求的内容"


class Conflict(ApiError):
    status = 409
    code = "conflict"
    message = "内容已被修改，请刷新后重试"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"
    message = "上传的内容过大"


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"
    message = "请求过于频繁，请稍后再试"

    def __init__(self, retry_after: int, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))}, **kwargs)
        self.retry_after = retry_after


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"
    message = "服务暂时不可用，请稍后再试"


class DeadlineExceeded(ApiError):
    """The request ran past its deadline: answered, so no client waits without end; whatever
    it had already stored stays stored, and a retry finds it."""

    status = 503
    code = "deadline_exceeded"
    message = "服务器繁忙，请稍后重试"

    def __init__(self, retry_after: int = 2, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, **kwargs)
