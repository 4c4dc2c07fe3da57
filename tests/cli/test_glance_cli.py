"""python-glanceclient's `glance` CLI, unmodified, reads kumo's image errors: it parses a JSON
error as `obj.get('message') for obj in body.values()` (kumo's old body, with an integer in it,
crashed it: `'int' object has no attribute 'get'`); Glance's answer to its `Accept: */*` is
webob's HTML page, whose text it shows."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, Cloud

pytestmark = pytest.mark.cli


def glance_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "glance"
    return str(beside_python) if beside_python.exists() else shutil.which("glance")


def glance(cloud: Cloud, *args: str, user: str = "admin") -> subprocess.CompletedProcess[str]:
    binary = glance_binary()
    if binary is None:
        pytest.skip("python-glanceclient's glance CLI is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env |= {
        "OS_AUTH_URL": f"{cloud.url}/identity/v3",
        "OS_USERNAME": user,
        "OS_PASSWORD": ADMIN_PASSWORD if user == "admin" else DEMO_PASSWORD,
        "OS_PROJECT_NAME": user,
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": cloud.settings.region,
        "OS_IMAGE_API_VERSION": "2",
    }
    return subprocess.run(
        [binary, *args], env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


def test_glance_shows_the_message_of_a_404(cloud: Cloud) -> None:
    missing = str(uuid.uuid4())
    result = glance(cloud, "image-show", missing)
    assert result.returncode != 0
    assert f"No image found with ID {missing}" in result.stderr, result.stderr
    assert "has no attribute" not in result.stderr and "Traceback" not in result.stderr


def test_glance_shows_the_message_of_a_403(cloud: Cloud) -> None:
    formats = ("--disk-format", "raw", "--container-format", "bare")
    created = glance(cloud, "image-create", "--name", "secret", "--visibility", "private", *formats)
    assert created.returncode == 0, created.stderr
    image_id = next(line.split("|")[2].strip() for line in created.stdout.splitlines() if "| id " in line)
    result = glance(cloud, "member-create", image_id, str(uuid.uuid4()))
    assert result.returncode != 0
    assert "Private images do not have members." in result.stderr, result.stderr
    assert "has no attribute" not in result.stderr
    assert glance(cloud, "image-list").returncode == 0
