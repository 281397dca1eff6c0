"""Build the OpenAPI 3.1 document from the declared endpoints."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from codecshift.version import read_version
from web.api.errors import ERROR_SCHEMA
from web.api.routing import ENDPOINTS, Endpoint

_CONVERTER = re.compile(r"<(?:([^:>]+):)?(\w+)>")
_TYPES = {"int": "integer", "float": "number", "path": "string", None: "string", "string": "string"}


def openapi_path(rule: str) -> str:
    return _CONVERTER.sub(lambda m: "{" + m.group(2) + "}", rule)


def _converter_schema(converter: str) -> dict[str, Any]:
    if converter.startswith("any("):
        return {"type": "string", "enum": [part.strip() for part in converter[4:-1].split(",")]}
    return {"type": _TYPES.get(converter or None, "string")}


def _path_parameters(rule: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": _converter_schema(conv)}
            for conv, name in _CONVERTER.findall(rule)]


def _query_parameters(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def _operation(endpoint: Endpoint, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": _path_parameters(endpoint.rule),
        "responses": {str(endpoint.status): {"description": "Success"},
                      "400": {"description": "Invalid input", "content": {
                          "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        "x-role": endpoint.role,
    }
    for status, text in endpoint.responses.items():
        op["responses"][str(status)] = {"description": text, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if endpoint.description:
        op["description"] = endpoint.description
    if endpoint.role == "public":
        op["security"] = []
    else:
        op["responses"]["401"] = {"description": "Missing or wrong credentials"}
        op["responses"]["403"] = {"description": "Credentials lack the role " + endpoint.role}
    if endpoint.query is not None:
        op["parameters"] += _query_parameters(endpoint.query, components)
    if endpoint.body is not None:
        schema = endpoint.body.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[endpoint.body.__name__] = schema
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{endpoint.body.__name__}"}}}}
    return op


def build_openapi() -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        item = paths.setdefault(openapi_path("/api" + endpoint.rule), {})
        for method in endpoint.methods:
            item[method.lower()] = _operation(endpoint, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "CodecShift API", "version": read_version()},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
        "security": [{"apiKey": []}, {"session": []}],
    }
