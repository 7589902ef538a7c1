"""OpenAPI 3.1 document built from the route table and the endpoints' pydantic models, so the
contract can't drift from the code."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from server.kernel.http import spec_of

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
            "responses": _responses(spec.status, spec.response, components),
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


def _responses(
    status: int, model: type[BaseModel] | None, components: dict[str, Any]
) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "成功"}
    if model is not None:
        success["content"] = {"application/json": {"schema": _ref(model, components)}}
    error = {
        "description": "错误",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return {str(status): success, "default": error}


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
