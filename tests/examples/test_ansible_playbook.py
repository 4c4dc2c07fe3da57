"""examples/ansible/playbook.yml, unmodified, run by Ansible's openstack.cloud collection against a
kumo cloud (fake driver, tenant networks): `--tags create` twice, the second run changing nothing;
the day-2 server actions; then `--tags cleanup` twice, the second run finding nothing left. What the
playbook made is checked through the API in between.

Ansible lives in a virtualenv of its own (.ansible-venv, made by scripts/install-ansible on first
use, under a minute with pip's cache warm, with this test's own Python). When that cannot be built
the test skips, saying why, except where Ansible is required (env `CI` or `KUMO_REQUIRE_ANSIBLE`
set, as `scripts/test` does for the whole suite): there it fails. Time limits make a hang a clear
failure: 600 s for the build, 300 s for each playbook run, 1500 s for the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from tests.cli.conftest import write_clouds_yaml
from tests.conftest import Cloud, Fleet

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ansible"
VENV = ROOT / ".ansible-venv"
NAMES: dict[str, Any] = yaml.safe_load((EXAMPLE / "vars.yml").read_text())
RECAP = re.compile(r"^localhost\s*:\s*(.*)$", re.MULTILINE)
BUILD_TIMEOUT = 600
RUN_TIMEOUT = 300


def _required() -> bool:
    """Whether a missing Ansible fails the test rather than skipping it (CI never skips it)."""
    return any(os.environ.get(name, "") not in ("", "0") for name in ("CI", "KUMO_REQUIRE_ANSIBLE"))


def _unavailable(why: str) -> NoReturn:
    if _required():
        pytest.fail(f"{why} (Ansible is required here: CI or KUMO_REQUIRE_ANSIBLE is set)")
    pytest.skip(why)


@dataclass
class Run:
    output: str
    recap: dict[str, int]
    seconds: float


@pytest.fixture(scope="module")
def ansible_playbook() -> Path:
    """The playbook command of .ansible-venv, built by scripts/install-ansible (with this
    interpreter) when missing."""
    try:
        built = subprocess.run(
            [str(ROOT / "scripts" / "install-ansible"), str(VENV)],
            env={**os.environ, "PYTHON": sys.executable},
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        _unavailable(
            f"the Ansible virtualenv could not be built: scripts/install-ansible took over {BUILD_TIMEOUT} s"
        )
    else:
        if built.returncode != 0:
            _unavailable(
                f"the Ansible virtualenv could not be built (scripts/install-ansible): {built.stderr[-2000:]}"
            )
    return VENV / "bin" / "ansible-playbook"


@pytest.fixture
def hypervisors(cloud: Cloud) -> Iterator[Fleet]:
    fleet = Fleet(cloud)
    fleet.add("ansible-1", vcpus=4, memory_mb=8192)
    fleet.add("ansible-2", vcpus=4, memory_mb=8192)
    yield fleet
    fleet.stop()


class Playbook:
    def __init__(self, command: Path, cloud: Cloud, work: Path) -> None:
        self.command = command
        self.image_file = work / "disk.raw"
        # a small raw disk: the fake driver boots nothing, the upload and checksum are what count
        self.image_file.write_bytes(bytes(range(256)) * 4096)
        self.extra = {
            "image_file": str(self.image_file),
            "private_key_file": str(work / "ansible-key.pem"),
            "sdk_log_path": str(work / "openstacksdk.log"),
        }
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ANSIBLE_"))}
        self.env.update(
            OS_CLIENT_CONFIG_FILE=str(write_clouds_yaml(cloud, work / "clouds.yaml")),
            ANSIBLE_HOME=str(work / "ansible-home"),
            ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"),
            ANSIBLE_LOCALHOST_WARNING="False",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
            ANSIBLE_NOCOLOR="True",
            PYTHONWARNINGS="ignore",
        )

    def run(self, tag: str) -> Run:
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [str(self.command), "playbook.yml", "--tags", tag, "-e", json.dumps(self.extra)],
                cwd=EXAMPLE,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
            )
        except subprocess.TimeoutExpired as exc:
            so_far = (
                (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
            )
            pytest.fail(
                f"ansible-playbook --tags {tag} took over {RUN_TIMEOUT} s; its output so far:\n{so_far}"
            )
        output = proc.stdout + proc.stderr
        found = RECAP.findall(proc.stdout)
        assert proc.returncode == 0 and found, (
            f"ansible-playbook --tags {tag} exited {proc.returncode}\n{output}"
        )
        recap = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", found[-1])}
        seconds = time.monotonic() - started
        print(f"ansible-playbook --tags {tag}: {seconds:.1f} s, {found[-1].strip()}")  # shown by -rP
        return Run(output, recap, seconds)


def _user_token(cloud: Cloud) -> str:
    return cloud.token(user=NAMES["user"], password=NAMES["user_password"], project=NAMES["project"])


def _one(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [item for item in items if item["name"] == name]
    assert len(found) == 1, f"{name} not found once in {[i['name'] for i in items]}"
    return found[0]


def _check_created(cloud: Cloud, image_data: bytes) -> str:
    """What `--tags create` made, read through the API; the server's id."""
    with cloud.client() as admin:
        project = _one(
            admin.get("/identity/v3/projects", params={"name": NAMES["project"]}).json()["projects"],
            NAMES["project"],
        )
        assert project["cost_center"] == "4711"  # the playbook's `properties`
        user = _one(
            admin.get("/identity/v3/users", params={"name": NAMES["user"]}).json()["users"], NAMES["user"]
        )
        assert user["default_project_id"] == project["id"] and user["enabled"] is True
        assignments = admin.get(
            "/identity/v3/role_assignments",
            params={"user.id": user["id"], "scope.project.id": project["id"], "include_names": "true"},
        ).json()["role_assignments"]
        assert "member" in {a["role"]["name"] for a in assignments}
        flavor = _one(admin.get("/compute/v2.1/flavors/detail").json()["flavors"], NAMES["flavor"])
        assert (flavor["vcpus"], flavor["ram"], flavor["disk"]) == (1, 256, 1)
        image = _one(
            admin.get("/image/v2/images", params={"name": NAMES["image"]}).json()["images"], NAMES["image"]
        )
        assert image["status"] == "active" and image["visibility"] == "public"
        assert image["size"] == len(image_data)
        assert image["checksum"] == hashlib.md5(image_data).hexdigest()
    token = _user_token(cloud)
    with cloud.client(token=token, microversion="2.96") as mine:
        [keypair] = [k["keypair"] for k in mine.get("/compute/v2.1/os-keypairs").json()["keypairs"]]
        assert keypair["name"] == NAMES["keypair"]
        group = _one(
            mine.get("/compute/v2.1/os-server-groups").json()["server_groups"], NAMES["server_group"]
        )
        network = _one(mine.get("/networking/v2.0/networks").json()["networks"], NAMES["network"])
        subnet = _one(mine.get("/networking/v2.0/subnets").json()["subnets"], NAMES["subnet"])
        assert subnet["network_id"] == network["id"] and subnet["cidr"] == NAMES["subnet_cidr"]
        [server] = mine.get("/compute/v2.1/servers/detail").json()["servers"]
        assert server["name"] == NAMES["server"] and server["status"] == "PAUSED"
        assert server["tenant_id"] == project["id"] and server["user_id"] == user["id"]
        assert server["flavor"]["original_name"] == NAMES["flavor"] and server["image"]["id"] == image["id"]
        assert server["key_name"] == NAMES["keypair"] and server["metadata"] == {"made-by": "ansible"}
        assert list(server["addresses"]) == [NAMES["network"]]
        assert server["security_groups"] == [{"name": "default"}]
        assert server["id"] in group["members"] and group["policy"] == "soft-anti-affinity"
        return str(server["id"])


def _check_actions(cloud: Cloud, server_id: str) -> None:
    token = _user_token(cloud)
    with cloud.client(token=token) as mine:
        server = mine.get(f"/compute/v2.1/servers/{server_id}").json()["server"]
        assert server["status"] == "PAUSED"
        actions = mine.get(f"/compute/v2.1/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    done = {a["action"] for a in actions}
    wanted = {"create", "pause", "unpause", "stop", "start", "suspend", "resume", "shelve", "unshelve"}
    assert wanted | {"lock", "unlock"} <= done, done


def _check_removed(cloud: Cloud) -> None:
    with cloud.client() as admin:
        assert admin.get("/identity/v3/projects", params={"name": NAMES["project"]}).json()["projects"] == []
        assert admin.get("/identity/v3/users", params={"name": NAMES["user"]}).json()["users"] == []
        flavors = admin.get("/compute/v2.1/flavors", params={"is_public": "None"}).json()["flavors"]
        assert NAMES["flavor"] not in {f["name"] for f in flavors}
        assert admin.get("/image/v2/images", params={"name": NAMES["image"]}).json()["images"] == []
        servers = admin.get("/compute/v2.1/servers", params={"all_tenants": "1"}).json()["servers"]
        assert NAMES["server"] not in {s["name"] for s in servers}
        for kind in ("networks", "subnets"):
            listed = admin.get(f"/networking/v2.0/{kind}").json()[kind]
            assert NAMES[kind[:-1]] not in {item["name"] for item in listed}
        groups = admin.get("/compute/v2.1/os-server-groups", params={"all_projects": "True"}).json()
        assert NAMES["server_group"] not in {g["name"] for g in groups["server_groups"]}


@pytest.mark.timeout(1500)
def test_playbook_is_idempotent_and_cleans_up(
    cloud: Cloud, hypervisors: Fleet, tmp_path: Path, ansible_playbook: Path
) -> None:
    playbook = Playbook(ansible_playbook, cloud, tmp_path)

    first = playbook.run("create")
    assert first.recap["failed"] == 0 and first.recap["changed"] >= 11, first.output
    second = playbook.run("create")
    assert second.recap["changed"] == 0 and second.recap["failed"] == 0, second.output
    server_id = _check_created(cloud, playbook.image_file.read_bytes())
    key = tmp_path / "ansible-key.pem"
    assert key.read_text().startswith("-----BEGIN") and key.stat().st_mode & 0o777 == 0o600

    actions = playbook.run("actions")
    assert actions.recap["failed"] == 0 and actions.recap["changed"] == 1, actions.output
    _check_actions(cloud, server_id)

    removed = playbook.run("cleanup")
    assert removed.recap["failed"] == 0 and removed.recap["changed"] >= 9, removed.output
    _check_removed(cloud)
    again = playbook.run("cleanup")
    assert again.recap["changed"] == 0 and again.recap["failed"] == 0, again.output
    # nothing the playbook asked for was refused: the only errors were name lookups (404)
    log = (tmp_path / "openstacksdk.log").read_text()
    refused = re.findall(r"RESP: \[(?!404)[45]\d\d\]", log)
    assert not refused, refused
