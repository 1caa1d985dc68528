"""The OpenAPI 3.1 document of the JSON API, built from its route table: each route's query
and body models (`api_requests`) and response model (`api_schemas`) as JSON Schema 2020-12,
so the document cannot drift from what the code validates and answers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from upstream.domain.practice.people import Level
from upstream.services import api_schemas as schemas

Handler = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Route:
    """One API route: the router's rule, its scope, and the OpenAPI document's source (the
    same pydantic models the handler validates with, so the document cannot drift)."""

    path: str
    method: str
    handler: Handler
    scope: Level  # read (any role or key), write (biller up, write key), admin (admin up)
    summary: str
    response: type[BaseModel]
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = False
    body_schema: dict[str, Any] | None = None  # a body no single model describes


_ERRORS = (("400", "Bad request"), ("401", "Unauthenticated"), ("403", "Forbidden"),
           ("404", "Not found"), ("405", "Method not allowed"), ("409", "Conflict"),
           ("413", "Body too large"))


def _schema(model: type[BaseModel], components: dict[str, Any],
            mode: Literal["validation", "serialization"]) -> dict[str, Any]:
    """The model's JSON Schema (OpenAPI 3.1 is JSON Schema 2020-12), its nested models
    moved to `components/schemas`."""
    found = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode,
                                    by_alias=True)
    components.update(found.pop("$defs", {}))
    components[model.__name__] = found
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _query_parameters(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()]


def document(routes: Sequence[Route]) -> dict[str, Any]:
    components: dict[str, Any] = {}
    problem_ref = _schema(schemas.Problem, components, "serialization")
    paths: dict[str, Any] = {}
    for route in routes:
        openapi_path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.path)
        params = [{"name": p.strip("{}"), "in": "path", "required": True,
                   "schema": {"type": "string", "minLength": 1}}
                  for p in openapi_path.split("/") if p.startswith("{")]
        operation: dict[str, Any] = {
            "summary": route.summary, "parameters": params + _query_parameters(route.query),
            "security": [{"apiKey": []}, {"idToken": []}], "x-scope": route.scope,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {
                    "schema": _schema(route.response, components, "serialization")}}},
                **{code: {"description": text,
                          "content": {"application/problem+json": {"schema": problem_ref}}}
                   for code, text in _ERRORS}}}
        if route.body is not None or route.body_schema is not None:
            body = route.body_schema or _schema(route.body, components,  # type: ignore[arg-type]
                                                "validation")
            operation["requestBody"] = {"required": route.body_required,
                                        "content": {"application/json": {"schema": body}}}
        paths.setdefault(openapi_path, {})[route.method.lower()] = operation
    return {"openapi": "3.1.0",
            "info": {"title": "Upstream API", "version": "1"},
            "paths": paths,
            "components": {
                "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "upk_<key id>_<secret>"},
                                    "idToken": {"type": "http", "scheme": "bearer",
                                                "bearerFormat": "Identity Platform ID token "
                                                                "(JWT) of a practice's user"}},
                "schemas": components}}
