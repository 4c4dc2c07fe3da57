"""`openstack server backup create` (createBackup) through the unmodified CLI, on a fake-driver
agent: a backup image with Nova's properties, rotated to `--rotate` backups of its type."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cli.conftest import OpenStackCLI
from tests.conftest import Cloud, Fleet, wait_for
from tests.functional.compute.test_servers import _create, _setup, _wait_status

pytestmark = pytest.mark.cli


def _backup(osc: OpenStackCLI, sid: str, name: str) -> dict[str, Any]:
    backup = ("server", "backup", "create", "--name", name, "--type", "nightly", "--rotate", "1")
    return dict(osc.run(*backup, "--wait", sid))


def _wait_active(c: Any, image_id: str) -> None:
    """The CLI's `--wait` waits for the image, but shows the image as it found it before waiting
    (python-openstackclient's backup create): the status is read again here."""
    wait_for(lambda: c.get(f"/image/v2/images/{image_id}").json()["status"] == "active")


def test_server_backup_create_rotates(osc: OpenStackCLI, cloud: Cloud, fleet: Fleet) -> None:
    fleet.add("cli-bk-1")
    with cloud.client() as c:
        flavor, image = _setup(c)
        sid = _create(c, flavor, image)
        _wait_status(c, sid, "ACTIVE")
        first = _backup(osc, sid, "nightly-1")
        assert first["name"] == "nightly-1"
        _wait_active(c, first["id"])
        props = c.get(f"/image/v2/images/{first['id']}").json()
        assert (props["image_type"], props["backup_type"], props["instance_uuid"]) == (
            "backup",
            "nightly",
            sid,
        )
        wait_for(lambda: _wait_status(c, sid, "ACTIVE")["OS-EXT-STS:task_state"] is None)
        second = _backup(osc, sid, "nightly-2")
        _wait_active(c, second["id"])
        # --rotate 1: the older backup is deleted once the new one is uploaded
        wait_for(lambda: c.get(f"/image/v2/images/{first['id']}").status_code == 404)
        names = [i["Name"] for i in osc.run("image", "list")]
        assert "nightly-2" in names and "nightly-1" not in names
