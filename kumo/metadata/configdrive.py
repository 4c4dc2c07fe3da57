"""The config drive: an ISO 9660 volume labelled `config-2` holding the same documents the
metadata service answers (Nova's layout: `openstack/<version>/…`, `openstack/latest/…`,
`ec2/2009-04-04/meta-data.json`, `ec2/latest/…`), for servers booted with `config_drive`.
cloud-init's ConfigDrive datasource finds it by its label. Built in pure Python with pycdlib
(Rock Ridge and Joliet names, as genisoimage -R -J writes them)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pycdlib

from kumo.metadata.bundle import Bundle
from kumo.metadata.render import EC2_VERSIONS, LATEST, OPENSTACK_VERSIONS, ec2_meta_data, render

LABEL = "config-2"


def files(bundle: Bundle, random_seed: bytes | None = None) -> dict[str, bytes]:
    """Path on the drive → content: every document of every version the drive carries."""
    seed = os.urandom(512) if random_seed is None else random_seed
    out: dict[str, bytes] = {}
    for version in (*OPENSTACK_VERSIONS, LATEST):
        listing = render(bundle, f"/openstack/{version}/", seed).body.decode().splitlines()
        for name in listing:
            answer = render(bundle, f"/openstack/{version}/{name}", seed)
            if answer.status == 200:
                out[f"openstack/{version}/{name}"] = answer.body
    ec2 = json.dumps(ec2_meta_data(bundle)).encode()
    user_data = bundle.user_data()
    for version in (EC2_VERSIONS[-1], LATEST):
        out[f"ec2/{version}/meta-data.json"] = ec2
        if user_data is not None:
            out[f"ec2/{version}/user-data"] = user_data
    return out


def _iso_name(name: str, directory: bool) -> str:
    """A name for the plain ISO 9660 tree (level 4 keeps it close to the real one; Rock Ridge
    and Joliet carry the real names)."""
    cleaned = "".join(c if c.isalnum() or c in "_" else "_" for c in name.upper())
    return cleaned if directory else cleaned + ";1"


def build(bundle: Bundle, destination: Path, random_seed: bytes | None = None) -> Path:
    """Write the instance's config drive to `destination` (atomically: a reader never sees half
    an ISO) and return it. What the libvirt driver calls for a server with `config_drive`."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=4, vol_ident=LABEL, rock_ridge="1.09", joliet=3, sys_ident="LINUX")
    made: set[str] = set()
    for path, content in sorted(files(bundle, random_seed).items()):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in made:
                iso.add_directory(
                    iso_path="/" + "/".join(_iso_name(p, True) for p in parts[:depth]),
                    rr_name=parts[depth - 1],
                    joliet_path="/" + directory,
                )
                made.add(directory)
        iso.add_fp(
            io.BytesIO(content),
            len(content),
            iso_path="/" + "/".join([*(_iso_name(p, True) for p in parts[:-1]), _iso_name(parts[-1], False)]),
            rr_name=parts[-1],
            joliet_path="/" + path,
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    with partial.open("wb") as out:
        iso.write_fp(out)
    iso.close()
    partial.replace(destination)
    return destination


def read(path: Path) -> dict[str, bytes]:
    """Every file on a config drive by its Rock Ridge path (what a guest sees), and its label
    under "" (for tests and for checking a drive before a guest boots from it)."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        out: dict[str, bytes] = {"": iso.pvd.volume_identifier.decode().strip().encode()}
        for root, _dirs, names in iso.walk(rr_path="/"):
            for name in names:
                full = f"{root.rstrip('/')}/{name}"
                buf = io.BytesIO()
                iso.get_file_from_iso_fp(buf, rr_path=full)
                out[full.lstrip("/")] = buf.getvalue()
        return out
    finally:
        iso.close()
