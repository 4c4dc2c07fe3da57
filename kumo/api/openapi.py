"""The OpenAPI document of kumo's routes, served unauthenticated at `/openapi.json`.

Routes parse their bodies by hand (`body: Any = Body(None)`) so that a bad body gets the
service's own OpenStack error, not FastAPI's 422; FastAPI therefore knows nothing of their
shape. Each service area describes its request bodies as JSON Schema in a `schemas.py` beside
its parsing code, and each route attaches its schema with `openapi_extra=json_body(SCHEMA)`
(FastAPI's documented way for bodies read by hand). The helpers here build those fragments.

Invariant: the schemas describe what the parsing code accepts (field names from the OpenStack
API references); the parsing code stays the authority, the document never validates anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

OPENAPI_PATH = "/openapi.json"

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
NAME: Schema = {"type": "string", "minLength": 1, "maxLength": 255}
UUID: Schema = {"type": "string", "format": "uuid"}
BOOLEAN: Schema = {"type": "boolean"}
INT32: Schema = {"type": "integer", "minimum": 0, "maximum": 2147483647}


def obj(properties: Schema, required: Iterable[str] = (), additional: bool | Schema = False) -> Schema:
    """A JSON object with these properties; no others unless `additional` says so."""
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": additional}
    required = list(required)
    if required:
        schema["required"] = required
    return schema


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def string_map(value: Schema = STRING, max_key: int = 255) -> Schema:
    """An object of string keys (1-`max_key` characters) to `value`."""
    return {
        "type": "object",
        "propertyNames": {"minLength": 1, "maxLength": max_key},
        "additionalProperties": value,
    }


def one_action(actions: dict[str, Schema]) -> Schema:
    """`{"<action>": {...}}`: exactly one of the named actions."""
    return {"oneOf": [obj({name: args}, [name]) for name, args in actions.items()]}


def json_body(schema: Schema, media_type: str = "application/json", required: bool = True) -> Schema:
    """The `openapi_extra` of a route whose body is `schema`, parsed by hand."""
    return {"requestBody": {"required": required, "content": {media_type: {"schema": schema}}}}


def query(*parameters: tuple[str, Schema]) -> Schema:
    """The `openapi_extra` listing query parameters a route reads from `request.query_params`."""
    return {"parameters": [{"name": name, "in": "query", "schema": schema} for name, schema in parameters]}


def install(app: FastAPI) -> None:
    """Serve the document at OPENAPI_PATH (no token: it describes, it holds no data)."""

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())
