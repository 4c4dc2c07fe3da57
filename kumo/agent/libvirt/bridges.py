"""The Linux bridge a guest's tap joins: made when missing, before libvirt defines the guest.

libvirt refuses to start a domain whose `<interface type='bridge'>` names a bridge that does
not exist, so the driver makes sure of each one first. This only makes the bridge (up, with the
network's MTU, no address: tenant networks stay apart from the host); namespaces, DHCP and
firewalls are the data plane's (kumo.agent.network). iproute2's `ip`, one short call per step;
idempotent and safe against a concurrent maker of the same bridge.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from kumo.agent.drivers.base import DriverError

# What the libvirt driver calls before defining a guest: (bridge name, MTU) -> None.
EnsureBridge = Callable[[str, int], None]


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise DriverError("iproute2's ip command is not installed") from None
    except subprocess.TimeoutExpired:
        raise DriverError(f"ip {' '.join(args)} did not finish in 30 s") from None


def link_kind(name: str) -> str | None:
    """The kind of link `name` ("bridge", "veth", "" for a plain device), None when absent."""
    done = _ip("-d", "-j", "link", "show", "dev", name)
    if done.returncode != 0:
        return None
    links = json.loads(done.stdout or "[]")
    if not links:
        return None
    return str(links[0].get("linkinfo", {}).get("info_kind", ""))


def ensure_bridge(name: str, mtu: int = 1500) -> None:
    """Make bridge `name` exist and be up with `mtu`. DriverError when a non-bridge holds the
    name or the kernel refuses."""
    kind = link_kind(name)
    if kind is None:
        added = _ip("link", "add", "name", name, "type", "bridge")
        if added.returncode != 0 and "exists" not in added.stderr:  # lost a race: fine
            raise DriverError(f"cannot create bridge {name}: {added.stderr.strip()}")
        kind = link_kind(name)
    if kind != "bridge":
        raise DriverError(f"{name} exists and is not a bridge (kind {kind or 'device'!r})")
    done = _ip("link", "set", "dev", name, "mtu", str(mtu), "up")
    if done.returncode != 0:
        raise DriverError(f"cannot bring bridge {name} up with MTU {mtu}: {done.stderr.strip()}")


def delete_bridge(name: str) -> None:
    """Remove bridge `name` when it exists (tests, and the data plane's network teardown)."""
    if link_kind(name) == "bridge":
        done = _ip("link", "del", "dev", name)
        if done.returncode != 0 and link_kind(name) is not None:
            raise DriverError(f"cannot delete bridge {name}: {done.stderr.strip()}")
