"""Pure pieces of the baremetal API: microversion parsing, JSON patch on a node, resource class
names."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.baremetal import hosts, microversion, service
from kumo.baremetal.models import Node
from kumo.errors import BadRequest, NotAcceptable


@pytest.mark.parametrize(
    ("headers", "version"),
    [
        ({}, (1, 1)),
        ({"x-openstack-ironic-api-version": "1.31"}, (1, 31)),
        ({"x-openstack-ironic-api-version": "latest"}, microversion.MAX_VERSION),
        ({"openstack-api-version": "baremetal 1.50"}, (1, 50)),
        ({"openstack-api-version": "compute 2.1, baremetal 1.22"}, (1, 22)),
    ],
)
def test_versions(headers: dict[str, str], version: tuple[int, int]) -> None:
    assert microversion.parse(headers).value == version


@pytest.mark.parametrize("raw", ["1.0", "1.115", "2.1", "one", "1.x"])
def test_unsupported_versions_are_406(raw: str) -> None:
    with pytest.raises(NotAcceptable):
        microversion.parse({"x-openstack-ironic-api-version": raw})


def test_headers_name_the_range_and_the_version() -> None:
    out = microversion.headers(microversion.Version((1, 40)))
    assert out["X-OpenStack-Ironic-API-Minimum-Version"] == "1.1"
    assert out["X-OpenStack-Ironic-API-Maximum-Version"] == microversion.text(microversion.MAX_VERSION)
    assert out["X-OpenStack-Ironic-API-Version"] == "1.40"
    assert out["OpenStack-API-Version"] == "baremetal 1.40"


def doc() -> dict[str, Any]:
    return {
        "name": "n1",
        "driver": "redfish",
        "resource_class": "bm",
        "description": None,
        "owner": None,
        "lessee": None,
        "driver_info": {"redfish_address": "http://a"},
        "properties": {"cpus": 4},
        "extra": {},
        "instance_info": {},
    }


@pytest.mark.parametrize(
    ("ops", "field", "value"),
    [
        ([{"op": "replace", "path": "/name", "value": "n2"}], "name", "n2"),
        ([{"op": "add", "path": "/properties/rack", "value": "r1"}], "properties", {"cpus": 4, "rack": "r1"}),
        ([{"op": "remove", "path": "/properties/cpus"}], "properties", {}),
        ([{"op": "remove", "path": "/driver_info"}], "driver_info", {}),
        ([{"op": "remove", "path": "/description"}], "description", None),
        ([{"op": "add", "path": "/extra/a~1b", "value": 1}], "extra", {"a/b": 1}),
        ([{"op": "add", "path": "/extra/x/y", "value": 1}], "extra", {"x": {"y": 1}}),
    ],
)
def test_patch(ops: list[dict[str, Any]], field: str, value: Any) -> None:
    assert service.apply_patch(doc(), ops)[field] == value


@pytest.mark.parametrize(
    "ops",
    [
        [],
        {"op": "add"},
        [{"op": "move", "path": "/name", "from": "/driver"}],
        [{"op": "replace", "path": "/provision_state", "value": "active"}],
        [{"op": "remove", "path": "/properties/nope"}],
        [{"op": "add", "path": "/name/x", "value": 1}],
        [{"op": "add", "path": "/properties/x"}],
    ],
)
def test_bad_patches(ops: Any) -> None:
    with pytest.raises(BadRequest):
        service.apply_patch(doc(), ops)


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("bm.small", "CUSTOM_BM_SMALL"),
        ("baremetal-gold", "CUSTOM_BAREMETAL_GOLD"),
        ("CUSTOM_X", "CUSTOM_X"),
        (None, None),
    ],
)
def test_resource_class_names(given: str | None, name: str | None) -> None:
    assert hosts.resource_class_name(Node(uuid="u", driver="fake", resource_class=given)) == name


@pytest.mark.parametrize("value", ["n-1", "node.a_b~c"])
def test_names(value: str) -> None:
    assert service._check_name(value) == value


@pytest.mark.parametrize("value", ["", "a b", "8e2d2f4c-9f6b-4d7e-9c39-0e8f5f4a2b11", 5])
def test_bad_names(value: Any) -> None:
    with pytest.raises(BadRequest):
        service._check_name(value)
