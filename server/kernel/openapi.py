"""OpenAPI 3.1 document built from the route table and the endpoints' pydantic models, so the
contract can't drift from the code."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from server.kernel.http import EndpointSpec, spec_of

_REF = "#/components/schemas/{model}"
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}


def build(app: web.Application) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        spec = spec_of(route.handler)
        if spec is None or route.method == "HEAD" or route.resource is None:
            continue
        operation: dict[str, Any] = {
            "summary": spec.summary,
            "tags": [spec.tag] if spec.tag else [],
            "responses": _responses(spec, route.resource.canonical, components),
            "x-roles": sorted(spec.roles) if spec.roles is not None else "public",
        }
        if spec.roles is not None:
            operation["security"] = [{"bearer": []}]
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(spec.body, components)}},
            }
        parameters = _path_parameters(route.resource.canonical) + _query_parameters(spec.query)
        if parameters:
            operation["parameters"] = parameters
        paths.setdefault(route.resource.canonical, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "科学素质测评服务 API", "version": "1.0.0"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": _REF.format(model=model.__name__)}


_ERROR_MEANINGS = {
    400: "请求格式有误",
    401: "未登录或登录已失效",
    403: "当前角色无权调用，或账号受限",
    404: "对象不存在",
    409: "与当前状态冲突（版本已变、流程不允许、已完成等）",
    413: "请求体或上传文件超过上限",
    422: "参数或请求体不符合要求（details 列出每个字段）",
    429: "请求过于频繁（Retry-After 给出等待秒数）",
    503: "存储服务暂时不可用或处理超时（Retry-After 给出等待秒数）",
}
_RETRY_AFTER = {"Retry-After": {"description": "建议等待的秒数", "schema": {"type": "string"}}}


def _responses(spec: EndpointSpec, path: str, components: dict[str, Any]) -> dict[str, Any]:
    """The success status and every error status the route can answer, each error with the
    one error body (`Error`); nothing is left to a `default`."""
    success: dict[str, Any] = {"description": "成功"}
    if spec.response is not None:
        success["content"] = {"application/json": {"schema": _ref(spec.response, components)}}
    responses = {str(spec.status): success}
    for status in sorted(spec.error_statuses(path)):
        if status == 304:  # a conditional GET whose copy is current: no body
            responses["304"] = {"description": "未修改（客户端缓存仍有效）"}
            continue
        error: dict[str, Any] = {
            "description": _ERROR_MEANINGS.get(status, "错误"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status in (429, 503):
            error["headers"] = _RETRY_AFTER
        responses[str(status)] = error
    return responses


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]
