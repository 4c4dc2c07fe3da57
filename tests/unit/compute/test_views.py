"""Pure view builders: which keys each microversion shows."""

from __future__ import annotations

import pytest

from kumo.compute import quotas
from kumo.compute.microversion import Microversion
from kumo.compute.models import Flavor
from kumo.compute.views import flavors, page_links
from kumo.compute.views import quotas as quota_views


def mv(text: str) -> Microversion:
    major, minor = text.split(".")
    return Microversion(int(major), int(minor))


def test_flavor_detail_keys_by_version() -> None:
    flavor = Flavor(
        id="1",
        name="m",
        vcpus=1,
        ram=64,
        disk=0,
        ephemeral=0,
        swap=0,
        rxtx_factor=1.0,
        is_public=True,
        description="d",
        extra_specs={"a": "b"},
    )
    assert "description" not in flavors.detail(flavor, mv("2.54"), "http://x")
    assert flavors.detail(flavor, mv("2.55"), "http://x")["description"] == "d"
    assert "extra_specs" not in flavors.detail(flavor, mv("2.60"), "http://x")
    assert flavors.detail(flavor, mv("2.61"), "http://x")["extra_specs"] == {"a": "b"}
    assert flavors.detail(flavor, mv("2.61"), "http://x")["swap"] == ""


@pytest.mark.parametrize(("version", "count"), [("2.1", 14), ("2.36", 10), ("2.57", 7)])
def test_quota_resources_by_version(version: str, count: int) -> None:
    assert len(quotas.visible_resources(mv(version))) == count


def test_limits_image_meta_goes_at_239() -> None:
    values = dict.fromkeys(quotas.RESOURCES, 1)
    used = dict.fromkeys(quotas.RESOURCES, 0)
    assert "maxImageMeta" in quota_views.limits(values, used, mv("2.38"))["limits"]["absolute"]
    assert "maxImageMeta" not in quota_views.limits(values, used, mv("2.39"))["limits"]["absolute"]


def test_page_links_only_for_full_pages() -> None:
    assert page_links("http://x", "flavors", {"limit": "2"}, [1, 2], 2, str) == [
        {"rel": "next", "href": "http://x/compute/v2.1/flavors?limit=2&marker=2"}
    ]
    assert page_links("http://x", "flavors", {}, [1], 2, str) is None
    assert page_links("http://x", "flavors", {}, [1, 2], None, str) is None
