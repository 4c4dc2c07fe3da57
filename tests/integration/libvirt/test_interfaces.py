"""os-interface on a real guest: a network's NIC hot-plugged into a running QEMU guest through the
compute API (libvirt's live domain and its definition both gain it), then unplugged (the guest
releases the device, both lose it, and only then does the port go)."""

from __future__ import annotations

import subprocess
from typing import Any

from kumo.agent.libvirt.domain import interface_macs
from kumo.network.ports import bridge_name
from tests.conftest import wait_for
from tests.integration.libvirt.conftest import MARKER, Hypervisor, _domain, domain

NET = "/networking/v2.0"


def _defined_macs(uuid_: str) -> set[str]:
    import libvirt

    dom: Any = _domain(uuid_)
    return interface_macs(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def _event(hv: Hypervisor, sid: str, action: str) -> dict[str, Any] | None:
    listed = hv.admin.get(f"/compute/v2.1/servers/{sid}/os-instance-actions").json()["instanceActions"]
    found = [a for a in listed if a["action"] == action]
    if not found:
        return None
    shown = hv.admin.get(
        f"/compute/v2.1/servers/{sid}/os-instance-actions/{found[0]['request_id']}",
        headers={"OpenStack-API-Version": "compute 2.51"},
    ).json()["instanceAction"]
    [event] = shown["events"]
    return event if event["finish_time"] else None


def test_attach_and_detach_a_nic_of_a_running_guest(hv: Hypervisor) -> None:
    net = hv.admin.post(f"{NET}/networks", json={"network": {"name": "hotplug"}}).json()["network"]
    subnet = {"network_id": net["id"], "cidr": "10.88.0.0/24", "ip_version": 4}
    assert hv.admin.post(f"{NET}/subnets", json={"subnet": subnet}).status_code == 201
    try:
        sid = hv.create("hotplug")
        hv.wait_status(sid, "ACTIVE")
        hv.wait_console(sid, MARKER)
        assert interface_macs(domain(sid)) == set()

        resp = hv.admin.post(
            f"/compute/v2.1/servers/{sid}/os-interface", json={"interfaceAttachment": {"net_id": net["id"]}}
        )
        assert resp.status_code == 200, resp.text
        attachment = resp.json()["interfaceAttachment"]
        mac = attachment["mac_addr"]
        event = wait_for(lambda: _event(hv, sid, "attach_interface"), timeout=60, interval=0.5)
        assert event["result"] == "Success", event
        assert mac in interface_macs(domain(sid)) and mac in _defined_macs(sid)
        assert f"<source bridge='{bridge_name(net['id'])}'" in domain(sid).replace('"', "'")

        resp = hv.admin.delete(f"/compute/v2.1/servers/{sid}/os-interface/{attachment['port_id']}")
        assert resp.status_code == 202, resp.text
        event = wait_for(lambda: _event(hv, sid, "detach_interface"), timeout=90, interval=0.5)
        assert event["result"] == "Success", event
        assert mac not in interface_macs(domain(sid)) and mac not in _defined_macs(sid)
        gone = hv.admin.get(f"{NET}/ports/{attachment['port_id']}")
        assert gone.status_code == 404
        assert hv.server(sid)["status"] == "ACTIVE"
    finally:
        for sid in hv.servers:
            hv.admin.delete(f"/compute/v2.1/servers/{sid}")
        subprocess.run(["ip", "link", "del", bridge_name(net["id"])], capture_output=True, check=False)
