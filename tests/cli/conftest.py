"""Drive the real `openstack` CLI against a test cloud.

    def test_something(osc: OpenStackCLI) -> None:
        project = osc.run("project", "create", "p1")            # parsed `-f json` output
        osc.run("project", "delete", "p1", json=False)          # commands without output
        mine = osc.run("server", "list", cloud="kumo-demo")     # as demo on project demo

`osc` drives a cloud on SQLite, `pg_osc` one on PostgreSQL; `any_osc` is parametrized over
both (a test taking it runs once per database), and `any_fleet` is the fake-driver fleet of
`any_osc`'s cloud.

Each call starts a fresh CLI process (about 1-2 s): keep the number of calls per test small.
"""

from __future__ import annotations

import json as jsonlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, Cloud, Fleet

ADMIN_CLOUD = "kumo"
DEMO_CLOUD = "kumo-demo"


def openstack_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "openstack"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("openstack")


def _cloud_entry(cloud: Cloud, user: str, password: str, project: str) -> dict[str, Any]:
    return {
        "auth": {
            "auth_url": f"{cloud.url}/identity",
            "username": user,
            "password": password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": cloud.settings.region,
        "identity_api_version": 3,
        "interface": "public",
    }


def write_clouds_yaml(cloud: Cloud, path: Path) -> Path:
    """clouds.yaml with `kumo` (admin on project admin) and `kumo-demo` (demo on project demo)."""
    clouds = {
        ADMIN_CLOUD: _cloud_entry(cloud, "admin", ADMIN_PASSWORD, "admin"),
        DEMO_CLOUD: _cloud_entry(cloud, "demo", DEMO_PASSWORD, "demo"),
    }
    path.write_text(yaml.safe_dump({"clouds": clouds}))
    return path


class CLIError(AssertionError):
    def __init__(self, args: list[str], returncode: int, stdout: str, stderr: str) -> None:
        command = " ".join(args)
        super().__init__(
            f"`openstack {command}` exited {returncode}\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}"
        )
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class OpenStackCLI:
    def __init__(
        self, binary: str, config_file: Path, timeout: float = 120, database: str = "sqlite"
    ) -> None:
        self.binary = binary
        self.database = database
        self.config_file = config_file
        self.timeout = timeout
        # Only our clouds.yaml decides where the CLI goes: drop any OS_* from the caller.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env["OS_CLIENT_CONFIG_FILE"] = str(config_file)

    def run_openstack(self, *args: str, cloud: str = ADMIN_CLOUD) -> str:
        """Run `openstack --os-cloud <cloud> <args>`; its stdout, or CLIError with stderr."""
        argv = ["--os-cloud", cloud, *args]
        proc = subprocess.run(
            [self.binary, *argv], env=self.env, capture_output=True, text=True, timeout=self.timeout
        )
        if proc.returncode != 0:
            raise CLIError(argv, proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout

    def run(self, *args: str, json: bool = True, cloud: str = ADMIN_CLOUD) -> Any:
        """With json=True adds `-f json` and returns the parsed output (None when empty)."""
        if not json:
            return self.run_openstack(*args, cloud=cloud)
        out = self.run_openstack(*args, "-f", "json", cloud=cloud)
        return jsonlib.loads(out) if out.strip() else None


@pytest.fixture
def osc(cloud: Cloud, tmp_path: Path) -> OpenStackCLI:
    binary = openstack_binary()
    if binary is None:
        pytest.skip("the openstack CLI is not installed")
    return OpenStackCLI(binary, write_clouds_yaml(cloud, tmp_path / "clouds.yaml"))


@pytest.fixture
def pg_osc(pg_cloud: Cloud, tmp_path: Path) -> OpenStackCLI:
    binary = openstack_binary()
    if binary is None:
        pytest.skip("the openstack CLI is not installed")
    return OpenStackCLI(binary, write_clouds_yaml(pg_cloud, tmp_path / "clouds.yaml"), database="postgresql")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_osc(request: pytest.FixtureRequest) -> OpenStackCLI:
    """The CLI against a cloud on each database in turn."""
    cli: OpenStackCLI = request.getfixturevalue("osc" if request.param == "sqlite" else "pg_osc")
    return cli


@pytest.fixture
def any_fleet(request: pytest.FixtureRequest, any_osc: OpenStackCLI) -> Fleet:
    """In-process fake-driver agents of any_osc's cloud."""
    found: Fleet = request.getfixturevalue("fleet" if any_osc.database == "sqlite" else "pg_fleet")
    return found
