"""Run OpenStack's public conformance suite (tempest, from PyPI) against a kumo cloud.

    .venv/bin/python -m conformance.tempest                 # the CI selection, against `kumo up`
    .venv/bin/python -m conformance.tempest --select full   # identity v3, compute and image API tests
    .venv/bin/python -m conformance.tempest --url URL --admin-password PW --select FILE

Tempest lives in a virtualenv of its own (`.tempest-venv`, made on first use); its configuration is
conformance/tempest.conf.in filled in for the cloud. Before the run the cloud gets what tempest's
configuration names: two flavors and two small images (made once, found again by name). The
report counts passed, failed and skipped tests (skips grouped by tempest's reason) and lists every
failure; `--json` writes it for docs/compatibility.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import venv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TEMPEST_VERSION = "47.0.0"
SELECTIONS = {"ci": HERE / "tempest-ci.txt", "full": HERE / "tempest-full.txt"}
EXCLUDES = HERE / "tempest-exclude.txt"
FLAVORS = (("tempest-1", 1, 128, 1), ("tempest-2", 1, 192, 1))
IMAGES = ("tempest-image", "tempest-image-alt")


@dataclass
class Report:
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # test id → last line of its traceback
    skipped: dict[str, str] = field(default_factory=dict)  # test id → tempest's reason

    def summary(self) -> str:
        lines = [f"passed {len(self.passed)}, failed {len(self.failed)}, skipped {len(self.skipped)}"]
        for test, why in sorted(self.failed.items()):
            lines.append(f"  FAILED {test}: {why}")
        for reason, count in Counter(self.skipped.values()).most_common():
            lines.append(f"  skipped {count}: {reason}")
        return "\n".join(lines)


def ensure_tempest(venv_dir: Path) -> Path:
    """The virtualenv holding tempest (made, or upgraded to TEMPEST_VERSION); its bin directory."""
    bin_dir = venv_dir / "bin"
    stamp = venv_dir / ".tempest-version"
    if not stamp.exists() or stamp.read_text() != TEMPEST_VERSION:
        venv.EnvBuilder(with_pip=True, clear=venv_dir.exists(), symlinks=True).create(venv_dir)
        subprocess.run([str(bin_dir / "pip"), "install", "-q", f"tempest=={TEMPEST_VERSION}"], check=True)
        stamp.write_text(TEMPEST_VERSION)
    return bin_dir


def _token(url: str, admin_password: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": admin_password}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    resp = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"]


def prepare_cloud(url: str, admin_password: str) -> dict[str, str]:
    """Flavors and images tempest's configuration names, made once; the cloud's compute maximum."""
    headers = {"X-Auth-Token": _token(url, admin_password)}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as api:
        values: dict[str, str] = {}
        existing = {f["name"]: f["id"] for f in api.get("/compute/v2.1/flavors").json()["flavors"]}
        for (name, vcpus, ram, disk), key in zip(FLAVORS, ("flavor", "flavor_alt"), strict=True):
            if name not in existing:
                made = api.post(
                    "/compute/v2.1/flavors",
                    json={"flavor": {"name": name, "vcpus": vcpus, "ram": ram, "disk": disk}},
                )
                made.raise_for_status()
                existing[name] = made.json()["flavor"]["id"]
            values[key] = existing[name]
        images = {i["name"]: i for i in api.get("/image/v2/images", params={"limit": 1000}).json()["images"]}
        for name, key in zip(IMAGES, ("image", "image_alt"), strict=True):
            image = images.get(name)
            if image is None or image["status"] != "active":
                made = api.post(
                    "/image/v2/images",
                    json={
                        "name": name,
                        "disk_format": "raw",
                        "container_format": "bare",
                        "visibility": "public",
                    },
                )
                made.raise_for_status()
                image = made.json()
                api.put(
                    f"/image/v2/images/{image['id']}/file",
                    content=b"tempest image\n" * 64,
                    headers={"Content-Type": "application/octet-stream"},
                ).raise_for_status()
            values[key] = image["id"]
        versions = api.get("/compute/").json()
        current = [
            v for v in versions.get("versions", [versions.get("version", {})]) if v.get("id") == "v2.1"
        ]
        values["max_microversion"] = current[0]["version"] if current else "2.1"
    return values


def write_workspace(
    bin_dir: Path,
    workspace: Path,
    url: str,
    admin_password: str,
    region: str,
    features: dict[str, bool],
    values: dict[str, str],
) -> Path:
    if not (workspace / ".stestr.conf").exists():
        workspace.parent.mkdir(parents=True, exist_ok=True)
        # a registry of its own beside the workspace, not the user's ~/.tempest/workspace.yaml
        registry = workspace.parent / "tempest-workspaces.yaml"
        subprocess.run(
            [str(bin_dir / "tempest"), "init", "--workspace-path", str(registry), str(workspace)],
            check=True,
            capture_output=True,
        )
    template = (HERE / "tempest.conf.in").read_text()
    fill = {
        "workspace": str(workspace),
        "url": url.rstrip("/"),
        "admin_password": admin_password,
        "region": region,
        **values,
        **{name: str(on).lower() for name, on in features.items()},
    }
    conf = workspace / "etc" / "tempest.conf"
    write_private(conf, template.format(**fill))
    return conf


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600) from its creation on, a file left
    there wider tightened first: tempest.conf holds the admin's password."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def run(bin_dir: Path, workspace: Path, conf: Path, select: Path, concurrency: int) -> Report:
    """Run the tests of `select` (a file of regexes, tempest's --include-list) minus the excludes."""
    cmd = [
        str(bin_dir / "tempest"),
        "run",
        "--config-file",
        str(conf),
        "--include-list",
        str(select),
        "--exclude-list",
        str(EXCLUDES),
        "--concurrency",
        str(concurrency),
    ]
    env = {**os.environ, "TEMPEST_CONFIG_DIR": str(conf.parent), "TEMPEST_CONFIG": conf.name}
    subprocess.run(cmd, cwd=workspace, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stream = subprocess.run(
        [str(bin_dir / "stestr"), "last", "--subunit"], cwd=workspace, capture_output=True, check=False
    ).stdout
    lines = (
        subprocess.run(
            [str(bin_dir / "python"), str(HERE / "subunit_summary.py")],
            input=stream,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .splitlines()
    )
    report = Report()
    for line in lines:
        test = json.loads(line)
        test_id = re.sub(r"\[.*\]$", "", test["id"])
        if test["status"] == "success":
            report.passed.append(test_id)
        elif test["status"] == "skip":
            report.skipped[test_id] = test["reason"]
        else:
            report.failed[test_id] = test["reason"]
    return report


def _from_clouds_yaml(cloud: str) -> tuple[str, str, str]:
    path = Path(os.environ.get("OS_CLIENT_CONFIG_FILE", Path.home() / ".kumo" / "clouds.yaml"))
    entry = yaml.safe_load(path.read_text())["clouds"][cloud]
    url = entry["auth"]["auth_url"].removesuffix("/").removesuffix("/v3").removesuffix("/identity")
    return url, entry["auth"]["password"], entry.get("region_name", "RegionOne")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the cloud's base URL (default: `kumo` in ~/.kumo/clouds.yaml)")
    parser.add_argument("--admin-password")
    parser.add_argument("--region", default=None)
    parser.add_argument("--select", default="ci", help="ci, full, or a file of test regexes")
    parser.add_argument("--workspace", type=Path, default=ROOT / ".tempest" / "workspace")
    parser.add_argument("--venv", type=Path, default=ROOT / ".tempest-venv")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    url, password, region = args.url, args.admin_password, args.region
    if url is None or password is None:
        url_yaml, password_yaml, region_yaml = _from_clouds_yaml("kumo")
        url, password, region = url or url_yaml, password or password_yaml, region or region_yaml
    select = SELECTIONS.get(args.select, Path(args.select))
    bin_dir = ensure_tempest(args.venv)
    values = prepare_cloud(url, password)
    conf = write_workspace(bin_dir, args.workspace, url, password, region or "RegionOne", FEATURES, values)
    print(
        f"tempest {TEMPEST_VERSION}: {select.name} against {url}"
        f" (compute up to {values['max_microversion']})",
        file=sys.stderr,
    )
    report = run(bin_dir, args.workspace, conf, select, args.concurrency)
    print(report.summary())
    if args.json:
        args.json.write_text(json.dumps(report.__dict__, indent=1, sort_keys=True))
    return 1 if report.failed else 0


# Compute features tempest may test, as kumo implements them (docs/compatibility.md).
FEATURES: dict[str, bool] = {
    "resize": True,
    "pause": True,
    "suspend": True,
    "shelve": True,
    "rescue": True,
    "snapshot": True,
    "serial_console": True,
}


if __name__ == "__main__":
    sys.exit(main())
