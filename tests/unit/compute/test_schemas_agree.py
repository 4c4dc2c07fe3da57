"""The OpenAPI schema of POST /servers (kumo/compute/schemas.py) agrees with the parser it
describes (routes/servers.py `parse_create`, the authority): the same bodies accepted and
refused, so the fuzz job sends what kumo takes and the document tells clients the truth."""

from __future__ import annotations

import inspect
import re
from typing import Any

import jsonschema
import pytest

from kumo.compute import schemas
from kumo.compute.microversion import max_version
from kumo.compute.routes import servers as servers_routes
from kumo.compute.routes.servers import parse_create
from kumo.errors import BadRequest

UUID = "6f1ab1d4-4c59-4f3c-9b0c-2f0b6ad0a001"
CAP = schemas.MAX_COUNT  # the default of setting max_servers_per_request


def _body(server: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    server = {"name": "vm", "flavorRef": "1", "imageRef": UUID, "networks": "auto", **(server or {})}
    return {"server": server, **top}


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (_body(), True),
        (_body(**{"OS-SCH-HNT:scheduler_hints": {"group": UUID}}), True),
        (_body(**{"os:scheduler_hints": {"same_host": UUID}}), True),
        (_body(**{"os:scheduler_hints": {"different_host": [UUID, UUID]}}), True),
        (_body({"min_count": CAP, "max_count": CAP}), True),
        (_body({"min_count": CAP + 1}), False),
        (_body({"max_count": CAP + 1}), False),
        (_body({"tags": ["t"] * 50}), True),
        (_body({"tags": ["t"] * 51}), False),
        (_body({"tags": ["a,b"]}), False),
        (_body({"tags": ["a/b"]}), False),
        (_body({"tags": [""]}), False),
    ],
)
def test_create_schema_and_parser_agree(body: dict[str, Any], accepted: bool) -> None:
    schema_ok = jsonschema.Draft202012Validator(schemas.SERVER_CREATE).is_valid(body)
    try:
        parse_create(body, CAP, max_version())
        parser_ok = True
    except BadRequest:
        parser_ok = False
    assert (schema_ok, parser_ok) == (accepted, accepted)


@pytest.mark.parametrize(
    ("host", "valid"), [("ev-host.example_1", True), ("no such/host", False), ("", False)]
)
def test_move_hosts_have_novas_hostname_pattern(host: str, valid: bool) -> None:
    validator = jsonschema.Draft202012Validator(schemas.SERVER_ACTION)
    for action in (
        {"evacuate": {"host": host}},
        {"migrate": {"host": host}},
        {"os-migrateLive": {"host": host}},
    ):
        assert validator.is_valid(action) == valid, action


def test_server_list_query_lists_every_parameter_the_route_reads() -> None:
    """Each query parameter `_list_query` reads by name is in SERVER_LIST_QUERY (DEVELOPERS.md:
    hand-read query strings are described), reservation_id included."""
    source = inspect.getsource(servers_routes._list_query)
    read = set(
        re.findall(r"""(?:params\.get|owner_filter|_int_param|time_param)\((?:params, )?"([^"]+)\"""", source)
    )
    read |= set(re.findall(r"""params\["([^"]+)"\]""", source))
    listed = {p["name"] for p in schemas.SERVER_LIST_QUERY["parameters"]}
    assert "reservation_id" in read
    assert read - listed == set()
