"""The Keystone login body's shape, checked before any lookup."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.errors import BadRequest
from kumo.identity.auth_request import validated

USER = {"name": "u", "domain": {"id": "default"}, "password": "secret-password"}


def auth(**fields: Any) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": USER}}, **fields}}


@pytest.mark.parametrize(
    "body",
    [
        auth(),
        auth(scope={"project": {"name": "p", "domain": {"name": "Default"}}}),
        auth(scope="unscoped"),
        auth(scope={"system": {"all": True}}),
        {"auth": {"identity": {"methods": ["token"], "token": {"id": "gAAAA"}}}},
        {"auth": {"identity": {"methods": ["totp"]}, "extra": [1, 2]}},  # unknown methods: the login's 401
    ],
)
def test_bodies_keystone_accepts_pass(body: dict[str, Any]) -> None:
    assert validated(body) is body["auth"]


@pytest.mark.parametrize(
    "body, message",
    [
        ([], "Expecting to find auth in request body."),
        ({"auth": []}, "Expecting to find auth in request body."),
        ({"auth": {}}, "Invalid input for field auth: 'identity' is a required property."),
        ({"auth": {"identity": {"methods": "password"}}}, "field auth/identity/methods: expected array"),
        ({"auth": {"identity": {"methods": [1]}}}, "field auth/identity/methods/item: expected string"),
        (auth(scope=1), "field auth/scope: expected object or string"),
        (auth(scope={"project": {"id": 1}}), "field auth/scope/project/id: expected string"),
        (auth(scope={"project": {"domain": {"id": "d"}}}), "field scope/project: id or name must be present"),
        (auth(scope={"system": {"all": "true"}}), "field auth/scope/system/all: expected boolean"),
        ({"auth": {"identity": {"methods": ["token"], "token": {}}}}, "'id' is a required property"),
    ],
)
def test_wrong_shapes_are_bad_requests(body: Any, message: str) -> None:
    with pytest.raises(BadRequest) as raised:
        validated(body)
    assert message in raised.value.message


def test_a_password_of_the_wrong_type_is_not_echoed() -> None:
    user = {"name": "u", "password": ["secret-password"]}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
    with pytest.raises(BadRequest) as raised:
        validated(body)
    assert "secret-password" not in raised.value.message
    assert "auth/identity/password/user/password: expected string" in raised.value.message
