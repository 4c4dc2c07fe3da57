"""Day-2 actions part B on one real guest: a line of its serial console read through kumo's
websocket proxy, a snapshot (a qcow2 image of its disk), then shelve of the paused guest
(offloaded at once: the domain goes) and unshelve from the shelve snapshot — the guest's boot
counter, kept on its disk, shows the disk survived."""

from __future__ import annotations

import re
import time

import websocket

from tests.conftest import wait_for
from tests.integration.libvirt.conftest import COMPUTE, MARKER, Hypervisor, domain_exists

TICK = re.compile(rb"KUMO-TICK [0-9.]+\r?\n")


def _serial_line(hv: Hypervisor, server_id: str) -> bytes:
    resp = hv.admin.post(
        f"{COMPUTE}/servers/{server_id}/remote-consoles",
        json={"remote_console": {"protocol": "serial", "type": "serial"}},
        headers={"OpenStack-API-Version": "compute 2.6"},
    )
    assert resp.status_code == 200, resp.text
    ws = websocket.create_connection(
        resp.json()["remote_console"]["url"], timeout=15, subprotocols=["binary"]
    )
    try:
        seen = b""
        deadline = time.monotonic() + 15
        while not TICK.search(seen) and time.monotonic() < deadline:
            seen += ws.recv()
        match = TICK.search(seen)
        assert match, seen[-300:]
        return match.group(0)
    finally:
        ws.close()


def test_serial_console_snapshot_shelve_and_unshelve(hv: Hypervisor) -> None:
    sid = hv.create("d2b-guest")
    hv.wait_status(sid, "ACTIVE")
    assert " boots=1 " in hv.wait_console(sid, MARKER)

    assert _serial_line(hv, sid).startswith(b"KUMO-TICK ")  # the guest's own output, relayed live

    resp = hv.action(sid, {"createImage": {"name": "d2b-snap"}})
    image_id = resp.headers["Location"].rsplit("/", 1)[1]

    def snapshot_active() -> bool:
        return hv.admin.get(f"/image/v2/images/{image_id}").json()["status"] == "active"

    wait_for(snapshot_active, timeout=120, interval=0.5)
    assert hv.wait_status(sid, "ACTIVE")["OS-EXT-STS:power_state"] == 1  # paused for the copy only
    with hv.admin.stream("GET", f"/image/v2/images/{image_id}/file") as data:
        assert next(data.iter_bytes(4)).startswith(b"QFI\xfb")  # a qcow2 of the guest's disk

    # shelved while paused (Nova allows it): the paused guest is destroyed, not asked to stop
    hv.action(sid, {"pause": None})
    hv.wait_status(sid, "PAUSED")
    hv.action(sid, {"shelve": None})
    assert hv.wait_status(sid, "SHELVED_OFFLOADED", timeout=120)["OS-EXT-SRV-ATTR:host"] is None
    assert not domain_exists(sid)

    hv.action(sid, {"unshelve": None})
    hv.wait_status(sid, "ACTIVE", timeout=120)
    out = hv.wait_console(sid, MARKER, timeout=120)
    assert " boots=2 " in out.split(MARKER)[-1].splitlines()[0] + " "  # the disk came back
    shelved = [
        i for i in hv.admin.get("/image/v2/images").json()["images"] if i["name"] == "d2b-guest-shelved"
    ]
    assert shelved == []  # the shelve snapshot is deleted once the server runs from it
