"""Route declarations: who may call a handler, what it reads, and how it answers.

Every handler is wrapped by `endpoint(...)`; the app refuses to start if a route lacks one,
so a new route can't slip through without an access decision."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError

from server.kernel.errors import DeadlineExceeded, PayloadTooLarge, ValidationFailed
from server.kernel.keys import PRINCIPAL

ROLES = ("resident", "editor", "analyst", "admin", "helper")
STAFF = ("editor", "analyst", "admin", "helper")
ANY_ROLE = ROLES

M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Awaitable[web.StreamResponse]]
MiddlewareHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class EndpointSpec:
    roles: frozenset[str] | None  # None: public, no token needed
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    summary: str
    tag: str
    deadline: float = 0.0
    max_body: int = 0  # bytes of JSON body read by read_json/read_optional
    # Error statuses this route answers beyond the ones every route of its kind has (see
    # `error_statuses`): 404 for an unknown object, 409 for a state conflict, …
    errors: frozenset[int] = frozenset()
    reads_body: bool = False  # a JSON body it parses itself (optional, or an upload)

    def error_statuses(self, path: str) -> frozenset[int]:
        """Every error status the route can answer, for the OpenAPI document (the fuzzer and
        the test suite's status recorder fail on a status seen but not listed here)."""
        statuses = {429, 503}  # the rate limit; storage away or the deadline passed
        if self.roles is not None:
            statuses |= {401, 403}
        if self.body is not None or self.reads_body:
            statuses |= {413, 422}
        if self.query is not None:
            statuses.add(422)
        if "{" in path:
            statuses.add(404)
        return frozenset(statuses | self.errors)


RESIDENT_DEADLINE_SECONDS = 10.0
STAFF_DEADLINE_SECONDS = 120.0
# A JSON body's limit unless the route (or its body model's `max_body_bytes`) declares more:
# every request model but an article and a census fits in it many times over.
JSON_MAX_BODY = 64 * 1024
_BODY_LIMIT = web.RequestKey("body_limit", int)
_BODY = web.RequestKey("body", bytes)


def endpoint(
    *,
    roles: Iterable[str] | Literal["public"],
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    tag: str = "",
    deadline: float | None = None,
    max_body: int | None = None,
    errors: tuple[int, ...] = (),
    reads_body: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare a handler's access rule and its models; parsed models arrive as `body=`/`query=`.

    Every request has a deadline (503 `deadline_exceeded` past it): residents' and public
    routes 10 s by default, staff routes (imports, exports, statistics) 120 s; a body still
    arriving counts against it, so a client sending one byte a second is cut off.

    A JSON body may have `max_body` bytes (413 `payload_too_large` beyond): by default the
    body model's `max_body_bytes`, else 64 KiB. A declared limit is checked against
    Content-Length before anything is read.

    `errors` lists the statuses particular to the route: its own errors, or 304 for a
    conditional GET (the usual ones follow from its roles, body, query and path:
    `EndpointSpec.error_statuses`); `reads_body` marks a route that reads a body without a
    `body` model (an optional one, or an upload)."""
    allowed = None if roles == "public" else frozenset(roles)
    if allowed is not None and not allowed <= set(ROLES):
        raise ValueError(f"unknown roles: {set(allowed) - set(ROLES)}")
    if deadline is None:
        residents = allowed is None or allowed <= {"resident"}
        deadline = RESIDENT_DEADLINE_SECONDS if residents else STAFF_DEADLINE_SECONDS
    declared = max_body is not None or body is not None
    limit = max_body if max_body is not None else _model_limit(body)

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            kwargs: dict[str, Any] = {}
            request[_BODY_LIMIT] = limit
            if declared:
                refuse_declared_oversize(request, limit)
            try:
                async with asyncio.timeout(deadline):
                    if query is not None:
                        kwargs["query"] = parse_model(query, dict(request.query), location="query")
                    if body is not None:
                        kwargs["body"] = parse_model(
                            body, await read_json(request), location="body"
                        )
                    return await handler(request, **kwargs)
            except TimeoutError:
                raise DeadlineExceeded() from None

        doc = inspect.getdoc(handler) or handler.__name__
        wrapped.__endpoint__ = EndpointSpec(  # type: ignore[attr-defined]
            allowed,
            body,
            query,
            response,
            status,
            doc.splitlines()[0],
            tag,
            deadline,
            limit,
            frozenset(errors),
            reads_body,
        )
        return wrapped

    return decorate


def spec_of(handler: Any) -> EndpointSpec | None:
    return getattr(handler, "__endpoint__", None)


def _model_limit(model: type[BaseModel] | None) -> int:
    declared = getattr(model, "max_body_bytes", None)
    return declared if isinstance(declared, int) else JSON_MAX_BODY


def body_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"请求体超过本接口的上限 {describe_bytes(limit)}，请精简内容或分批提交",
        details={"max_bytes": limit},
    )


def describe_bytes(size: int) -> str:
    for unit, name in ((1024 * 1024, "MB"), (1024, "KB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} 字节"


def refuse_declared_oversize(request: web.Request, limit: int) -> None:
    """413 before reading anything when the client announces a body over `limit`."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise body_too_large(limit)


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The request body, at most `limit` bytes (default: the route's). Counted as it arrives,
    after any Content-Encoding is undone, so neither a chunked body without Content-Length
    nor a small gzip that inflates can get past the limit."""
    if limit is None:
        limit = request.get(_BODY_LIMIT, JSON_MAX_BODY)
    if _BODY in request:
        return request[_BODY]
    refuse_declared_oversize(request, limit)
    received = bytearray()
    while chunk := await request.content.readany():
        received.extend(chunk)
        if len(received) > limit:
            raise body_too_large(limit)
    request[_BODY] = raw = bytes(received)
    return raw


async def read_json(request: web.Request) -> Any:
    raw = await read_body(request)
    if not raw:
        raise ValidationFailed("请求体不能为空，请发送 JSON", details=[])
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ValidationFailed("请求体不是有效的 JSON", details=[]) from None


async def read_optional(request: web.Request, model: type[M]) -> M | None:
    """An optional JSON body: None when the request has none (e.g. workflow actions)."""
    if not (await read_body(request)).strip():
        return None
    return parse_model(model, await read_json(request), location="body")


async def read_upload(request: web.Request, *, limit: int) -> tuple[str, bytes]:
    """The file of a multipart/form-data upload (field `file`): its name and bytes, refused
    with a Chinese message when absent, malformed or over `limit` bytes."""
    if not request.content_type.startswith("multipart/"):
        raise ValidationFailed(
            "请以 multipart/form-data 上传，字段名为 file",
            details=[{"field": "file", "message": "缺少文件"}],
        )
    try:
        found = await _file_part(request, limit)
    except (ValueError, KeyError, AssertionError, HttpProcessingError):
        # aiohttp's multipart reader raises these for a missing boundary or a broken body.
        raise ValidationFailed(
            "上传内容不是有效的 multipart/form-data（缺少 boundary 或格式损坏），请重新选择文件上传",
            details=[{"field": "file", "message": "上传格式有误"}],
        ) from None
    if found is not None:
        return found
    raise ValidationFailed(
        "缺少上传文件（字段名 file）", details=[{"field": "file", "message": "缺少文件"}]
    )


async def _file_part(request: web.Request, limit: int) -> tuple[str, bytes] | None:
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == "file":
            data = bytearray()
            while chunk := await part.read_chunk(256 * 1024):
                data.extend(chunk)
                if len(data) > limit:
                    raise PayloadTooLarge(f"文件超过 {describe_bytes(limit)}，请拆分后分批上传")
            return part.filename or "", bytes(data)
    return None


def parse_model(model: type[M], data: Any, *, location: str = "body") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_failed(error, location=location) from None


def validation_failed(error: ValidationError, *, location: str) -> ValidationFailed:
    details = [
        {
            "location": location,
            "field": ".".join(str(part) for part in item["loc"]) or location,
            "loc": [location, *item["loc"]],
            "type": item["type"],
            "message": chinese_message(item),
        }
        for item in error.errors(include_url=False, include_input=False)
    ]
    first = details[0]
    return ValidationFailed(f"{first['field']}：{first['message']}", details=details)


_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "string_type": "应为文本",
    "int_type": "应为整数",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_type": "应为数字",
    "float_parsing": "应为数字",
    "bool_type": "应为 true 或 false",
    "bool_parsing": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为对象",
    "model_type": "应为对象",
    "model_attributes_type": "应为对象",
    "string_pattern_mismatch": "格式不正确",
    "url_parsing": "不是有效的网址",
    "url_scheme": "网址必须以 http:// 或 https:// 开头",
    "json_invalid": "不是有效的 JSON",
    "datetime_parsing": "不是有效的时间",
    "date_parsing": "不是有效的日期",
}


def chinese_message(item: Any) -> str:
    kind = item["type"]
    ctx = item.get("ctx") or {}
    if kind == "value_error":
        # Our validators raise ValueError with a Chinese message already.
        return str(ctx.get("error", item["msg"]))
    if kind in ("literal_error", "enum"):
        return f"取值必须是：{ctx.get('expected', '')}"
    if kind == "string_too_long":
        return f"内容过长，最多 {ctx.get('max_length')} 个字符"
    if kind == "string_too_short":
        return "不能为空" if ctx.get("min_length") == 1 else f"至少 {ctx.get('min_length')} 个字符"
    if kind == "too_short":
        return f"至少需要 {ctx.get('min_length')} 项"
    if kind == "too_long":
        return f"最多 {ctx.get('max_length')} 项"
    if kind in ("greater_than_equal", "greater_than"):
        return f"不能小于 {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"不能大于 {ctx.get('le', ctx.get('lt'))}"
    return _MESSAGES.get(kind, "取值无效")


def _dumps(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def caller_id(request: web.Request) -> str:
    """The signed-in caller's user id (routes that call this admit no anonymous caller)."""
    principal = request[PRINCIPAL]
    assert principal is not None  # guaranteed by the route's declared roles
    return principal.user_id


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
