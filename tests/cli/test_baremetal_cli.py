"""`openstack baremetal …` (python-ironicclient, unmodified) and `openstack server …` with a
baremetal flavor, against kumo with a conductor stand-in that obeys at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import CLIError, OpenStackCLI
from tests.conftest import Cloud
from tests.functional.baremetal.standin import StandInConductor

pytestmark = pytest.mark.cli


@pytest.fixture
def conductor(cloud: Cloud) -> Iterator[StandInConductor]:
    c = StandInConductor(cloud.url, cloud.settings.secret("agent_token")).start()
    yield c
    c.stop()


def wait_for(osc: OpenStackCLI, node: str, field: str, value: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        shown = osc.run("baremetal", "node", "show", node)
        if shown[field] == value or time.monotonic() > deadline:
            assert shown[field] == value, shown
            return shown  # type: ignore[no-any-return]
        time.sleep(0.5)


def create(osc: OpenStackCLI, name: str, *extra: str) -> dict[str, Any]:
    return osc.run(  # type: ignore[no-any-return]
        "baremetal", "node", "create", "--name", name, "--driver", "redfish",
        "--driver-info", "redfish_address=http://127.0.0.1:8000",
        "--driver-info", f"redfish_system_id=/redfish/v1/Systems/{name}",
        "--driver-info", "redfish_password=secret",
        "--resource-class", "bm.small",
        "--property", "cpus=4", "--property", "memory_mb=8192", "--property", "local_gb=100",
        "--property", "rack=r1", "--property", "availability_zone=az1", "--property", "region=RegionOne",
        *extra,
    )  # fmt: skip


def test_enroll_inspect_update_and_delete(osc: OpenStackCLI) -> None:
    node = create(osc, "bm-0")
    assert node["provision_state"] == "enroll"
    assert node["resource_class"] == "bm.small"
    assert node["driver_info"]["redfish_password"] == "******"
    assert node["properties"]["cpus"] == 4 and node["properties"]["rack"] == "r1"
    listed = osc.run("baremetal", "node", "list")
    assert [n["name"] for n in listed] == ["bm-0"]
    assert listed[0]["provision_state"] == "enroll"
    osc.run("baremetal", "node", "set", "bm-0", "--property", "rack=r2", "--description", "left", json=False)
    osc.run("baremetal", "node", "unset", "bm-0", "--property", "region", json=False)
    shown = osc.run("baremetal", "node", "show", "bm-0")
    assert shown["properties"]["rack"] == "r2" and "region" not in shown["properties"]
    assert shown["description"] == "left"
    osc.run("baremetal", "node", "delete", "bm-0", json=False)
    assert osc.run("baremetal", "node", "list") == []


def test_manage_provide_power_and_maintenance(osc: OpenStackCLI, conductor: StandInConductor) -> None:
    create(osc, "bm-1")
    osc.run("baremetal", "node", "manage", "bm-1", json=False)
    wait_for(osc, "bm-1", "provision_state", "manageable")
    osc.run("baremetal", "node", "provide", "bm-1", json=False)
    shown = wait_for(osc, "bm-1", "provision_state", "available")
    assert shown["power_state"] == "power off"
    osc.run("baremetal", "node", "power", "on", "bm-1", json=False)
    wait_for(osc, "bm-1", "power_state", "power on")
    osc.run("baremetal", "node", "power", "off", "bm-1", json=False)
    wait_for(osc, "bm-1", "power_state", "power off")
    osc.run("baremetal", "node", "maintenance", "set", "bm-1", "--reason", "disk swap", json=False)
    shown = osc.run("baremetal", "node", "show", "bm-1")
    assert shown["maintenance"] is True and shown["maintenance_reason"] == "disk swap"
    osc.run("baremetal", "node", "maintenance", "unset", "bm-1", json=False)
    assert osc.run("baremetal", "node", "show", "bm-1")["maintenance"] is False
    conductors = osc.run("baremetal", "conductor", "list")
    assert [(c["hostname"], c["alive"]) for c in conductors] == [("standin", True)]
    drivers = {d["name"]: d["hosts"] for d in osc.run("baremetal", "driver", "list")}
    assert drivers["redfish"] == "standin"  # the CLI joins the hosts


def test_errors_are_clear_4xx(osc: OpenStackCLI) -> None:
    create(osc, "bm-2")
    with pytest.raises(CLIError) as err:
        osc.run("baremetal", "node", "provide", "bm-2", json=False)
    assert 'can not be performed on node "bm-2" while it is in state "enroll"' in err.value.stderr
    assert "HTTP 400" in err.value.stderr and "Error contacting" not in err.value.stderr  # no retries
    with pytest.raises(CLIError) as err:
        osc.run("baremetal", "node", "show", "nope")
    assert "Node nope could not be found" in err.value.stderr and "HTTP 404" in err.value.stderr


def _flavor_and_image(osc: OpenStackCLI, tmp_path: Path) -> None:
    osc.run(
        "flavor", "create", "--vcpus", "4", "--ram", "8192", "--disk", "100",
        "--property", "resources:CUSTOM_BM_SMALL=1", "--property", "resources:VCPU=0",
        "--property", "resources:MEMORY_MB=0", "--property", "resources:DISK_GB=0",
        "bm.small",
    )  # fmt: skip
    disk = tmp_path / "os.raw"
    disk.write_bytes(b"\0" * 65536)
    osc.run(
        "image", "create", "--file", str(disk), "--disk-format", "raw", "--container-format", "bare",
        "--public", "os-image",
    )  # fmt: skip


def test_server_create_lands_on_a_node_and_delete_returns_it(
    osc: OpenStackCLI, conductor: StandInConductor, tmp_path: Path
) -> None:
    catalog = {entry["Type"]: entry for entry in osc.run("catalog", "list")}
    assert catalog["baremetal"]["Name"] == "ironic"
    node = create(osc, "bm-3")
    osc.run("baremetal", "node", "manage", "--wait", "30", "bm-3", json=False)
    osc.run("baremetal", "node", "provide", "--wait", "30", "bm-3", json=False)
    _flavor_and_image(osc, tmp_path)
    create_args = ("--flavor", "bm.small", "--image", "os-image", "--nic", "none", "--wait", "bm-server")
    server = osc.run("server", "create", *create_args)
    assert server["status"] == "ACTIVE"
    assert server["OS-EXT-SRV-ATTR:hypervisor_hostname"] == node["uuid"]
    assert server["OS-EXT-AZ:availability_zone"] == "az1"
    shown = osc.run("baremetal", "node", "show", "bm-3")
    assert (shown["provision_state"], shown["instance_uuid"]) == ("active", server["id"])
    osc.run("server", "delete", "--wait", "bm-server", json=False)
    shown = wait_for(osc, "bm-3", "provision_state", "available")
    assert shown["instance_uuid"] is None


def test_adopt_a_running_machine(osc: OpenStackCLI, conductor: StandInConductor, tmp_path: Path) -> None:
    _flavor_and_image(osc, tmp_path)
    demo = osc.run("project", "show", "demo")["id"]
    node = create(osc, "legacy-7")
    osc.run(
        "baremetal", "node", "set", "legacy-7",
        "--instance-info", f"project_id={demo}", "--instance-info", "display_name=legacy-db",
        json=False,
    )  # fmt: skip
    osc.run("baremetal", "node", "manage", "--wait", "30", "legacy-7", json=False)
    conductor.power[node["uuid"]] = "power on"  # it runs already
    osc.run("baremetal", "node", "adopt", "--wait", "30", "legacy-7", json=False)
    shown = osc.run("baremetal", "node", "show", "legacy-7")
    assert (shown["provision_state"], shown["power_state"]) == ("active", "power on")
    mine = osc.run("server", "list", cloud="kumo-demo")
    assert [(s["ID"], s["Name"], s["Status"]) for s in mine] == [
        (shown["instance_uuid"], "legacy-db", "ACTIVE")
    ]
    assert [t["kind"] for t in conductor.seen] == ["node_verify", "node_adopt"]  # no power action


def test_ports_create_list_show_set_delete(osc: OpenStackCLI) -> None:
    node = create(osc, "bm-ports")
    made = osc.run(
        "baremetal", "port", "create", "52:54:00:AB:CD:01", "--node", node["uuid"],
        "--extra", "slot=1", "--local-link-connection", "switch_id=0a:1b:2c:3d:4e:5f",
        "--local-link-connection", "port_id=Eth1/7", "--physical-network", "physnet1",
    )  # fmt: skip
    assert made["address"] == "52:54:00:ab:cd:01" and made["node_uuid"] == node["uuid"]
    assert made["pxe_enabled"] is True and made["extra"] == {"slot": 1}
    assert made["local_link_connection"] == {"switch_id": "0a:1b:2c:3d:4e:5f", "port_id": "Eth1/7"}
    other = osc.run(
        "baremetal", "port", "create", "52:54:00:ab:cd:02", "--node", node["uuid"], "--pxe-enabled", "false"
    )
    assert other["pxe_enabled"] is False
    listed = osc.run("baremetal", "port", "list")
    assert [(p["uuid"], p["address"]) for p in listed] == [
        (made["uuid"], "52:54:00:ab:cd:01"),
        (other["uuid"], "52:54:00:ab:cd:02"),
    ]
    on_node = osc.run("baremetal", "port", "list", "--node", "bm-ports", "--long")
    assert [(p["uuid"], p["pxe_enabled"]) for p in on_node] == [
        (made["uuid"], True),
        (other["uuid"], False),
    ]
    by_address = osc.run("baremetal", "port", "list", "--address", "52:54:00:ab:cd:02")
    assert [p["uuid"] for p in by_address] == [other["uuid"]]
    shown = osc.run("baremetal", "port", "show", made["uuid"])
    assert {k: v for k, v in shown.items() if v != ""} == {k: v for k, v in made.items() if v != ""}
    assert osc.run("baremetal", "port", "show", "--address", "52:54:00:ab:cd:01")["uuid"] == made["uuid"]
    osc.run("baremetal", "port", "set", other["uuid"], "--pxe-enabled", "--extra", "rack=r9", json=False)
    shown = osc.run("baremetal", "port", "show", other["uuid"])
    assert shown["pxe_enabled"] is True and shown["extra"] == {"rack": "r9"}
    osc.run("baremetal", "port", "unset", other["uuid"], "--extra", "rack", json=False)
    assert osc.run("baremetal", "port", "show", other["uuid"])["extra"] == {}
    with pytest.raises(CLIError) as err:
        osc.run("baremetal", "port", "create", "52:54:00:ab:cd:01", "--node", node["uuid"])
    assert "HTTP 409" in err.value.stderr and "already exists" in err.value.stderr
    with pytest.raises(CLIError) as err:
        osc.run("baremetal", "port", "create", "nonsense", "--node", node["uuid"])
    assert "nonsense" in err.value.stderr
    osc.run("baremetal", "port", "delete", other["uuid"], json=False)
    assert [p["uuid"] for p in osc.run("baremetal", "port", "list")] == [made["uuid"]]
    osc.run("baremetal", "node", "delete", "bm-ports", json=False)
    assert osc.run("baremetal", "port", "list") == []


def test_server_with_a_network_on_a_node_takes_its_mac(
    osc: OpenStackCLI, conductor: StandInConductor, tmp_path: Path
) -> None:
    node = create(osc, "bm-nic")
    osc.run("baremetal", "port", "create", "52:54:00:ab:cd:10", "--node", node["uuid"])
    osc.run("baremetal", "node", "manage", "--wait", "30", "bm-nic", json=False)
    osc.run("baremetal", "node", "provide", "--wait", "30", "bm-nic", json=False)
    _flavor_and_image(osc, tmp_path)
    osc.run("network", "create", "bm-net")
    osc.run("subnet", "create", "--network", "bm-net", "--subnet-range", "10.91.0.0/24", "bm-sub")
    server = osc.run(
        "server",
        "create",
        "--flavor",
        "bm.small",
        "--image",
        "os-image",
        "--network",
        "bm-net",
        "--wait",
        "bm-nic-server",
    )
    assert server["status"] == "ACTIVE" and server["OS-EXT-SRV-ATTR:hypervisor_hostname"] == node["uuid"]
    [port] = osc.run("port", "list", "--server", "bm-nic-server", "--long")
    assert port["MAC Address"] == "52:54:00:ab:cd:10"
    shown = osc.run("port", "show", port["ID"])
    assert (shown["binding_host_id"], shown["binding_vnic_type"]) == (node["uuid"], "baremetal")
    assert shown["device_owner"] == "compute:az1"  # the node's zone
    osc.run("server", "delete", "--wait", "bm-nic-server", json=False)
    left = osc.run("port", "list", "--network", "bm-net")
    assert left and all(p["MAC Address"] != "52:54:00:ab:cd:10" for p in left)  # the DHCP port stays
