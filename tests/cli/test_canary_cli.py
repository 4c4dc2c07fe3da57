"""`kumo canary run` as an operator runs it against a cloud: it makes its service user with the
admin's credentials from the state directory, runs the canaries asked for (here two hosts', one
of them broken, on a network), prints one JSON line per run and exits 1 when one failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from kumo.agent.drivers import fake
from kumo.config import private_dir, write_private
from tests.conftest import ADMIN_PASSWORD, Cloud, Fleet
from tests.integration.libvirt.conftest import upload

KUMO = str(Path(sys.executable).parent / "kumo")


def test_kumo_canary_run(cloud: Cloud, fleet: Fleet) -> None:
    for host in ("cli-h1", "cli-h2"):
        fleet.add(host, heartbeat_interval=0.5)
    with cloud.client() as admin:
        flavor = {"flavor": {"name": "c1.tiny", "vcpus": 1, "ram": 128, "disk": 1}}
        assert admin.post("/compute/v2.1/flavors", json=flavor).status_code == 200
        upload(admin, "kumo-test-image", b"\0" * 4096, "raw")
        net = admin.post("/networking/v2.0/networks", json={"network": {"name": "cli-net", "shared": True}})
        assert net.status_code == 201, net.text
        subnet = {"network_id": net.json()["network"]["id"], "cidr": "10.62.0.0/24", "ip_version": 4}
        assert admin.post("/networking/v2.0/subnets", json={"subnet": subnet}).status_code == 201
    state = cloud.settings.state_dir
    write_private(private_dir(state) / "admin_password.secret", ADMIN_PASSWORD)
    argv = [
        KUMO,
        "canary",
        "run",
        "--api-url",
        cloud.url,
        "--flavor",
        "c1.tiny",
        "--host",
        "cli-h1",
        "--host",
        "cli-h2",
        "--network",
        "cli-net",
    ]
    fake.break_host("cli-h2", "no disk")
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "KUMO_STATE_DIR": str(state)},
        )
    finally:
        fake.mend_host("cli-h2")
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1, done.stderr  # one failed
    assert [(r["target"], r["host"], r["ok"], r["failed_step"]) for r in runs] == [
        ("cli-h1", "cli-h1", True, None),
        ("cli-h2", "cli-h2", False, "active"),
    ]
    assert "no disk" in str(runs[1]["error"])
    # On the network: DHCP and metadata checked, the login skipped (a fake guest), with the key
    # pair whose private key the runner made in the state directory.
    steps = {s["step"]: s for s in runs[0]["steps"]}
    assert steps["metadata"]["ok"] and f"uuid={runs[0]['server_id']} " in steps["metadata"]["detail"]
    assert steps["ssh"]["detail"] == "skipped: no real guest (a fake hypervisor)"
    assert (state / "canary" / "id_ed25519").exists()
