"""os-quota-sets, os-quota-class-sets and /limits: keys per microversion, usage, updates."""

from __future__ import annotations

import pytest

from kumo.compute import quotas
from kumo.errors import OverLimit
from tests.conftest import Cloud
from tests.functional.compute.helpers import (
    API,
    BACKENDS,
    add_instance,
    database,
    demo_token,
    either_cloud,
    project_id,
    reader_token,
)


@pytest.fixture(params=BACKENDS)
def any_cloud(request: pytest.FixtureRequest) -> Cloud:
    return either_cloud(request)


CORE = {
    "id",
    "instances",
    "cores",
    "ram",
    "metadata_items",
    "key_pairs",
    "server_groups",
    "server_group_members",
}
PERSONALITY = {"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
NETWORK = {"fixed_ips", "floating_ips", "security_groups", "security_group_rules"}


@pytest.mark.parametrize(
    ("version", "keys"),
    [
        ("2.1", CORE | PERSONALITY | NETWORK),
        ("2.36", CORE | PERSONALITY),
        ("2.56", CORE | PERSONALITY),
        ("2.57", CORE),
    ],
)
def test_quota_set_keys(cloud: Cloud, version: str, keys: set[str]) -> None:
    with cloud.client(microversion=version) as c:
        project = project_id(c, "demo")
        shown = c.get(f"{API}/os-quota-sets/{project}").json()["quota_set"]
        defaults = c.get(f"{API}/os-quota-sets/{project}/defaults").json()["quota_set"]
        detail = c.get(f"{API}/os-quota-sets/{project}/detail").json()["quota_set"]
    assert set(shown) == keys and set(defaults) == keys and set(detail) == keys
    assert (
        shown["id"] == project and shown["instances"] == 10 and shown["cores"] == 20 and shown["ram"] == 51200
    )
    assert detail["instances"] == {"in_use": 0, "limit": 10, "reserved": 0}


def test_usage_update_and_revert(any_cloud: Cloud) -> None:
    with any_cloud.client(microversion="2.57") as c:
        project = project_id(c, "demo")
    add_instance(any_cloud, None, project, vcpus=2, ram=2048)
    add_instance(any_cloud, None, project, vcpus=4, ram=1024)
    add_instance(any_cloud, None, project, vcpus=8, ram=8192, deleted=True)
    with any_cloud.client(microversion="2.57") as c:
        detail = c.get(f"{API}/os-quota-sets/{project}/detail").json()["quota_set"]
        assert (detail["instances"]["in_use"], detail["cores"]["in_use"], detail["ram"]["in_use"]) == (
            2,
            6,
            3072,
        )
        resp = c.put(f"{API}/os-quota-sets/{project}", json={"quota_set": {"instances": 50, "cores": "-1"}})
        assert resp.status_code == 200
        updated = resp.json()["quota_set"]
        assert "id" not in updated and updated["instances"] == 50 and updated["cores"] == -1
        below = c.put(f"{API}/os-quota-sets/{project}", json={"quota_set": {"instances": 1}})
        assert below.status_code == 400
        forced = c.put(f"{API}/os-quota-sets/{project}", json={"quota_set": {"instances": 1, "force": True}})
        assert forced.status_code == 200 and forced.json()["quota_set"]["instances"] == 1
        for bad in ({"instances": -2}, {"instances": "many"}, {"injected_files": 3}, {"bogus": 1}):
            assert c.put(f"{API}/os-quota-sets/{project}", json={"quota_set": bad}).status_code == 400, bad
        assert (
            c.put(f"{API}/os-quota-sets/no-such-project", json={"quota_set": {"cores": 1}}).status_code == 400
        )
        assert c.delete(f"{API}/os-quota-sets/{project}").status_code == 202
        assert c.get(f"{API}/os-quota-sets/{project}").json()["quota_set"]["instances"] == 10


def test_class_defaults_change_every_project(cloud: Cloud) -> None:
    with cloud.client(microversion="2.57") as c:
        resp = c.put(f"{API}/os-quota-class-sets/default", json={"quota_class_set": {"instances": 15}})
        assert resp.status_code == 200 and resp.json()["quota_class_set"]["instances"] == 15
        shown = c.get(f"{API}/os-quota-class-sets/default").json()["quota_class_set"]
        assert shown["id"] == "default" and "server_groups" in shown and "injected_files" not in shown
        project = project_id(c, "demo")
        assert c.get(f"{API}/os-quota-sets/{project}").json()["quota_set"]["instances"] == 15
        assert c.get(f"{API}/os-quota-sets/{project}/defaults").json()["quota_set"]["instances"] == 15
    with cloud.client(microversion="2.49") as c:
        old = c.get(f"{API}/os-quota-class-sets/default").json()["quota_class_set"]
        assert "server_groups" not in old and "floating_ips" in old


def test_tenancy(cloud: Cloud) -> None:
    with cloud.client() as c:
        admin_project, demo_project = project_id(c, "admin"), project_id(c, "demo")
    with cloud.client(demo_token(cloud)) as demo:
        assert demo.get(f"{API}/os-quota-sets/{demo_project}").status_code == 200
        assert demo.get(f"{API}/os-quota-sets/{admin_project}").status_code == 403
        assert (
            demo.put(f"{API}/os-quota-sets/{demo_project}", json={"quota_set": {"cores": 1}}).status_code
            == 403
        )
        assert demo.get("/compute/v2.1/limits", params={"tenant_id": admin_project}).status_code == 403
    with cloud.client(reader_token(cloud)) as reader:
        assert reader.get(f"{API}/os-quota-sets/{demo_project}/detail").status_code == 200
        assert reader.delete(f"{API}/os-quota-sets/{demo_project}").status_code == 403


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        (
            "2.1",
            {
                "maxTotalFloatingIps",
                "maxSecurityGroups",
                "maxImageMeta",
                "maxPersonality",
                "totalFloatingIpsUsed",
            },
            set(),
        ),
        (
            "2.36",
            {"maxImageMeta", "maxPersonality"},
            {"maxTotalFloatingIps", "maxSecurityGroups", "totalSecurityGroupsUsed"},
        ),
        ("2.39", {"maxPersonality", "maxPersonalitySize"}, {"maxImageMeta"}),
        ("2.57", set(), {"maxPersonality", "maxPersonalitySize", "maxImageMeta", "maxTotalFloatingIps"}),
    ],
)
def test_limits_shape(cloud: Cloud, version: str, present: set[str], absent: set[str]) -> None:
    always = {
        "maxTotalInstances",
        "maxTotalCores",
        "maxTotalRAMSize",
        "maxTotalKeypairs",
        "maxServerMeta",
        "maxServerGroups",
        "maxServerGroupMembers",
        "totalInstancesUsed",
        "totalCoresUsed",
        "totalRAMUsed",
        "totalServerGroupsUsed",
    }
    with cloud.client(microversion=version) as c:
        body = c.get(f"{API}/limits").json()["limits"]
    assert body["rate"] == []
    keys = set(body["absolute"])
    assert always <= keys and present <= keys and not (absent & keys)
    if version == "2.57":
        assert keys == always


def test_limits_show_usage_of_the_project(cloud: Cloud) -> None:
    with cloud.client() as c:
        project = project_id(c, "demo")
    add_instance(cloud, None, project, vcpus=3, ram=1536)
    with cloud.client(demo_token(cloud), microversion="2.57") as c:
        absolute = c.get(f"{API}/limits").json()["limits"]["absolute"]
    assert (absolute["totalInstancesUsed"], absolute["totalCoresUsed"], absolute["totalRAMUsed"]) == (
        1,
        3,
        1536,
    )
    with cloud.client(microversion="2.57") as c:
        mine = c.get(f"{API}/limits").json()["limits"]["absolute"]
        theirs = c.get(f"{API}/limits", params={"tenant_id": project}).json()["limits"]["absolute"]
    assert mine["totalInstancesUsed"] == 0 and theirs["totalInstancesUsed"] == 1


def test_check_instance_quota_message(any_cloud: Cloud) -> None:
    with any_cloud.client() as c:
        project = project_id(c, "demo")
    for _ in range(10):
        add_instance(any_cloud, None, project, vcpus=1, ram=512)
    db = database(any_cloud)
    try:
        with db.transaction() as s:
            with pytest.raises(OverLimit) as over:
                quotas.check_instance_quota(s, project, 1, 1, 512)
            assert (
                over.value.message
                == "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"
            )
            with pytest.raises(OverLimit) as both:
                quotas.check_instance_quota(s, project, 2, 12, 1024)
            assert both.value.message == (
                "Quota exceeded for cores, instances: Requested 12, 2, but already used 10, 10 of 20, 10 "
                "cores, instances"
            )
            quotas.check_instance_quota(s, "other-project", 1, 1, 512)
    finally:
        db.dispose()


def test_class_name_longer_than_its_column_is_a_400(any_cloud: Cloud) -> None:
    """The class is stored as "quota-class:<name>" in a 64-character column: a longer name was a
    500 on PostgreSQL."""
    longest = "c" * (quotas.MAX_OWNER - len("quota-class:"))
    with any_cloud.client(microversion="2.64") as c:
        body = {"quota_class_set": {"instances": 7}}
        assert c.put(f"{API}/os-quota-class-sets/{longest}", json=body).status_code == 200
        too_long = c.put(f"{API}/os-quota-class-sets/{longest}c", json=body)
        assert too_long.status_code == 400, too_long.text
        assert "longer than 52 characters" in too_long.json()["badRequest"]["message"]


def test_limits_are_ascii_integers(cloud: Cloud) -> None:
    """Superscript one passed str.isdigit() and failed int(): a 500."""
    with cloud.client(microversion="2.64") as c:
        admin = project_id(c, "admin")
        for value in ("\u00b9", "--1", "\u0665"):
            resp = c.put(f"{API}/os-quota-sets/{admin}", json={"quota_set": {"cores": value}})
            assert resp.status_code == 400, (value, resp.text)
        assert c.put(f"{API}/os-quota-sets/{admin}", json={"quota_set": {"cores": "40"}}).status_code == 200
