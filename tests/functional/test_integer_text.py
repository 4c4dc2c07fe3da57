"""Integer text that int() refuses or misreads is a 400 (or a 404 for a path id), never a 500
(issue 15): every service parses it with the one rule of `kumo.validation.int_text`.

"--5" and more than 4,300 digits raised ValueError out of int() (a 500); " 5", "٣" and "1_0"
are integers to int() but not to Nova's or Placement's schemas. A limit of many digits is
clamped, as Nova and Placement clamp it (200)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kumo.validation import BEYOND, MAX_INT, int_text
from tests.functional.field_validation import BACKENDS, Case, FieldCloud, run_case, serve_field_cloud

API = "/compute/v2.1"
P = "/placement"
NOWHERE = "00000000-0000-0000-0000-000000000000"
PLACEMENT = {"OpenStack-API-Version": "placement 1.35"}
LONG = "1" * 5000
BAD = ["--5", LONG, " 5", "\u0663", "1_0"]


def _cases(text: str) -> list[Case]:
    limit = 200 if text == LONG else 400
    boot = {"name": "vm", "flavorRef": "{flavor}", "imageRef": "{image}", "networks": "none"}
    flavor = {"name": "f-int", "vcpus": 1, "ram": text, "disk": 1}
    group = {"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": text}}
    # `{`/`}` in the text would be taken for placeholders: none of BAD holds one
    return [
        Case("POST", f"{API}/servers", {"server": {**boot, "min_count": text}}, 400),
        Case("POST", f"{API}/servers", {"server": {**boot, "max_count": text}}, 400),
        Case("POST", f"{API}/flavors", {"flavor": flavor}, 400),
        Case("PUT", API + "/os-quota-sets/{project}", {"quota_set": {"cores": text}}, 400),
        Case("POST", f"{API}/os-server-groups", {"server_group": group}, 400, microversion="2.64"),
        Case(
            "POST",
            f"{API}/os-kumo-stock-requests",
            {"stock_request": {"flavor": "{flavor}", "count": text, "reason": "r"}},
            400,
        ),
        Case("POST", f"{API}/servers/{NOWHERE}/action", {"os-getConsoleOutput": {"length": text}}, 400),
        Case("GET", f"{API}/os-hypervisors/{text}", None, 404),
        # an id that is no integer names no aggregate: 404, as Nova (tempest test_aggregates_negative)
        Case("GET", f"{API}/os-aggregates/{text}", None, 404),
        Case("GET", f"{API}/servers?limit={text}", None, limit),
        Case("GET", f"{P}/allocation_candidates?resources=VCPU:{text}", None, 400, headers=PLACEMENT),
        Case(
            "GET", f"{P}/allocation_candidates?resources=VCPU:1&limit={text}", None, limit, headers=PLACEMENT
        ),
        Case("GET", f"/image/v2/images?size_min={text}", None, 400),
    ]


# A microversion of thousands of digits is well formed and beyond every version: a 406.
_VERSIONS = [
    (f"{API}/servers", {"OpenStack-API-Version": f"compute 2.{LONG}"}, 406),
    (f"{API}/servers", {"X-OpenStack-Nova-API-Version": f"2.{LONG}"}, 406),
    (f"{P}/resource_providers", {"OpenStack-API-Version": f"placement 1.{LONG}"}, 406),
    ("/baremetal/v1/nodes", {"X-OpenStack-Ironic-API-Version": f"1.{LONG}"}, 406),
]
CASES = [case for text in BAD for case in _cases(text)]


@pytest.fixture(scope="module", params=BACKENDS)
def field_cloud(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FieldCloud]:
    yield from serve_field_cloud(request, tmp_path_factory)


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.id[:80]}" for i, c in enumerate(CASES)])
def test_bad_integer_text(field_cloud: FieldCloud, case: Case) -> None:
    run_case(field_cloud, case)


@pytest.mark.parametrize(("path", "headers", "status"), _VERSIONS)
def test_huge_microversion(field_cloud: FieldCloud, path: str, headers: dict[str, str], status: int) -> None:
    with field_cloud.cloud.client(token=field_cloud.ids["token"]) as c:
        assert c.get(path, headers=headers).status_code == status


@pytest.mark.parametrize(
    ("text", "bounds", "number"),
    [
        ("0", (), 0),
        ("-7", (), -7),
        ("0042", (), 42),
        ("9" * 19, (), int("9" * 19)),
        ("0" * 30 + "5", (), 5),
        ("-0", (), 0),
        ("9" * 20, (), BEYOND),
        ("1" * 5000, (), BEYOND),
        ("-" + "1" * 5000, (), -BEYOND),
        ("1" * 5000, (1, MAX_INT), None),
        ("--5", (), None),
        ("+5", (), None),
        (" 5", (), None),
        ("5 ", (), None),
        ("5\n", (), None),
        ("\u0663", (), None),
        ("1_0", (), None),
        ("", (), None),
        (5, (), None),
        ("5", (1, 4), None),
        ("0", (1, 4), None),
        ("4", (1, 4), 4),
    ],
)
def test_int_text(text: object, bounds: tuple[int, ...], number: int | None) -> None:
    assert int_text(text, *bounds) == number
