"""Declare API endpoints once: route, validation of body and query, role, OpenAPI entry.

Each endpoint states its request models (pydantic) and the role it needs; the
same declaration validates requests (400 naming the field), enforces access
and produces /api/openapi.json, so the document cannot drift from the routes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, request
from pydantic import BaseModel, ValidationError

from web.api.errors import ApiError

# Roles, from least to most privileged. "node" endpoints accept node and admin
# keys; "webhook" endpoints webhook and admin keys (also as a basic-auth password
# or an apikey query argument, since senders cannot always set headers); "read"
# accepts any signed-in user or an admin key; "admin" needs an admin (user or
# key); "public" needs nothing.
ROLES = ("public", "node", "webhook", "metrics", "read", "admin")


@dataclass
class Endpoint:
    rule: str
    methods: tuple[str, ...]
    name: str
    summary: str
    role: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    description: str = ""
    responses: dict[int, str] = field(default_factory=dict)


ENDPOINTS: list[Endpoint] = []


def _validation_error(exc: ValidationError, where: str) -> ApiError:
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first.get("loc", ())) or where
    message = first.get("msg", "invalid value").removeprefix("Value error, ")
    return ApiError(400, "validation_error", f"{loc}: {message}", field=loc)


def nul_field(value: Any, where: str = "") -> str | None:
    """The dotted name of the first text (a value or a key, at any depth) holding a NUL
    character, or None. PostgreSQL refuses NUL in text, so such input is a 400, not a 500."""
    if isinstance(value, str):
        return (where or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            if "\x00" in str(key):
                return name
            found = nul_field(item, name)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = nul_field(item, f"{where}.{index}" if where else str(index))
            if found:
                return found
    return None


def refuse_nul(value: Any, where: str = "") -> None:
    field = nul_field(value, where)
    if field is not None:
        raise ApiError(400, "validation_error", f"{field}: must not contain a NUL character", field=field)


def parse_body(model: type[BaseModel]) -> BaseModel:
    data = request.get_json(silent=True)
    if data is None:
        if request.data:
            raise ApiError(400, "invalid_json", "the request body is not valid JSON")
        data = {}
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the request body must be a JSON object")
    refuse_nul(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(exc, "body") from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    args: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        args[key] = values if len(values) > 1 else values[0]
    refuse_nul(args)
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        raise _validation_error(exc, "query") from None


def api_route(bp: Blueprint, rule: str, methods: tuple[str, ...] = ("GET",), *, summary: str,
              role: str = "admin", tag: str = "misc", body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, status: int = 200, description: str = "",
              responses: dict[int, str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``func`` under ``bp`` at ``rule``; it receives ``body=``/``query=`` models."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def view(**kwargs: Any) -> Any:
            if body is not None:
                kwargs["body"] = parse_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            return func(**kwargs)

        view.api_role = role  # type: ignore[attr-defined]
        bp.add_url_rule(rule, endpoint=func.__name__, view_func=view, methods=list(methods))
        ENDPOINTS.append(Endpoint(rule=rule, methods=methods, name=func.__name__, summary=summary,
                                  role=role, tag=tag, body=body, query=query, status=status,
                                  description=description or (func.__doc__ or "").strip(),
                                  responses=responses or {}))
        return view

    return decorator
