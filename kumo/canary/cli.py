"""`kumo canary run|loop`: the health canaries as a client of a running kumo (kumo/canary)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import httpx
import typer

from kumo.canary.loop import (
    CANARY_PROJECT,
    CANARY_USER,
    CanaryLoop,
    KeyPairFailed,
    ensure_canary_user,
    login,
    resolve_spec,
)
from kumo.canary.policy import AZ, HOST, MIGRATION, policy_from
from kumo.canary.probe import Prober
from kumo.config import get_settings
from kumo.logs import setup_logging

app = typer.Typer(help="Health canaries: tiny servers booted, checked and deleted (docs/canaries.md)")

API = typer.Option("http://127.0.0.1:8780", "--api-url", help="kumo API URL")
IMAGE = typer.Option("kumo-test-image", help="The canary's image (name or id): kumo's test image")
FLAVOR = typer.Option("m1.tiny", help="The canary's flavor (name or id)")
NETWORK = typer.Option(
    None, help="A tenant network (name or id): the canary also checks its DHCP address, metadata and SSH"
)
SSH = typer.Option(
    True,
    "--ssh/--no-ssh",
    help="With --network: log into the guest with the canary's key pair (kumo/canary/ssh.py: from where)",
)
KEY_DIR = typer.Option(
    None,
    "--key-dir",
    help="Where the canary's private key is kept (default: <state_dir>/canary); one per canary user",
)


def ssh_key_dir(ssh: bool, given: Path | None) -> Path | None:
    """Where the canary's private key is, when it logs into its guests."""
    if not ssh:
        return None
    return given if given is not None else get_settings().state_dir / "canary"


def service_user(api_url: str) -> str:
    """The canary service user made (or its password set) with the admin's credentials from
    this machine's state directory; its password."""
    settings = get_settings()
    password = settings.secret("canary_password")
    admin = login(api_url, "admin", settings.secret("admin_password"), "admin")
    with httpx.Client(base_url=api_url, headers={"X-Auth-Token": admin}, timeout=30) as client:
        ensure_canary_user(client, password)
    return password


@app.command("run")
def run(
    az: list[str] = typer.Option([], "--az", help="A zone to canary (repeatable)"),
    host: list[str] = typer.Option([], "--host", help="A host to canary, forced there (repeatable)"),
    migration: list[str] = typer.Option(
        [], "--migration", help="A zone's live-migration canary (repeatable)"
    ),
    api_url: str = API,
    image: str = IMAGE,
    flavor: str = FLAVOR,
    network: str = NETWORK,
    ssh: bool = SSH,
    key_dir: Path = KEY_DIR,
) -> None:
    """Run canaries now (every zone when none is named); one JSON line per run, exit status 1
    when one failed."""
    setup_logging("WARNING")
    token = login(api_url, CANARY_USER, service_user(api_url), CANARY_PROJECT)
    with httpx.Client(base_url=api_url, headers={"X-Auth-Token": token}, timeout=60) as api:
        zones = {s["host"]: s["zone"] for s in api.get("/compute/v2.1/os-services").json()["services"]}
        targets = [(AZ, z) for z in az] + [(HOST, h) for h in host] + [(MIGRATION, z) for z in migration]
        if not targets:
            targets = [(AZ, z) for z in sorted({z for z in zones.values() if z != "internal"})]
        try:
            spec = resolve_spec(api, image, flavor, network, ssh_key_dir(ssh, key_dir))
        except KeyPairFailed as exc:
            typer.echo(f"kumo canary: {exc}", err=True)
            raise typer.Exit(2) from None
        prober = Prober(api, spec)
        failed = False
        for scope, target in targets:
            stored = prober.report(prober.run(scope, target, zones.get(target) if scope == HOST else None))
            failed = failed or not stored["ok"]
            typer.echo(json.dumps(stored))
    raise typer.Exit(1 if failed else 0)


@app.command("loop")
def loop(
    api_url: str = API,
    image: str = IMAGE,
    flavor: str = FLAVOR,
    network: str = NETWORK,
    ssh: bool = SSH,
    key_dir: Path = KEY_DIR,
    tick: float = 5.0,
) -> None:
    """Run the canaries as they fall due, until SIGTERM or Ctrl-C (cadences: KUMO_CANARY_* settings)."""
    setup_logging()
    password = service_user(api_url)
    runner = CanaryLoop(
        api_url,
        lambda: login(api_url, CANARY_USER, password, CANARY_PROJECT),
        lambda api: resolve_spec(api, image, flavor, network, ssh_key_dir(ssh, key_dir)),
        policy_from(get_settings()),
        tick=tick,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    runner.stop()
