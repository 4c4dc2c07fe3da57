"""JSON Schema of the Keystone v3 bodies parsed by hand (`routes.py`: the login), for the OpenAPI
document. The admin routes' bodies are pydantic models (`admin.py`), described by FastAPI."""

from __future__ import annotations

from kumo.api.openapi import STRING, Schema, obj

_DOMAIN: Schema = obj({"id": STRING, "name": STRING})
_USER: Schema = obj({"id": STRING, "name": STRING, "domain": _DOMAIN, "password": STRING}, ["password"])
_USER_REF: Schema = obj({"id": STRING, "name": STRING, "domain": _DOMAIN})
_PROJECT: Schema = obj({"id": STRING, "name": STRING, "domain": _DOMAIN})

AUTH_TOKENS: Schema = obj(
    {
        "auth": obj(
            {
                "identity": obj(
                    {
                        "methods": {
                            "type": "array",
                            "items": {
                                "type": "string",
                                "enum": ["password", "token", "application_credential"],
                            },
                            "minItems": 1,
                        },
                        "password": obj({"user": _USER}, ["user"]),
                        "token": obj({"id": STRING}, ["id"]),
                        "application_credential": obj(
                            {"id": STRING, "name": STRING, "secret": STRING, "user": _USER_REF}, ["secret"]
                        ),
                    },
                    ["methods"],
                ),
                "scope": {
                    "anyOf": [
                        obj({"project": _PROJECT}, ["project"]),
                        obj({"domain": _DOMAIN}, ["domain"]),
                        obj({"system": obj({"all": {"type": "boolean"}})}, ["system"]),
                        {"type": "string", "enum": ["unscoped"]},
                    ]
                },
            },
            ["identity"],
        )
    },
    ["auth"],
)
