"""The metadata service end to end: a server booted through the compute API with a key pair,
user data and properties; its bundle from the internal API (SQLite and PostgreSQL) in at most
two statements; the agent's responder over real HTTP on loopback, with distinct source
addresses, one backend read per instance; and cloud-init's own OpenStack and EC2 readers
crawling it."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from kumo.agent.libvirt.config_drive import ApiConfigDrive
from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.metadata import backend, configdrive, render
from kumo.metadata.bundle import Bundle
from kumo.metadata.client import ApiBundleSource, read_bundle
from kumo.metadata.service import MetadataService
from tests.conftest import Cloud
from tests.functional.compute.helpers import BACKENDS, database
from tests.functional.helpers import make_flavor, upload_image
from tests.unit.metadata.cloudinit import cloudinit

API = "/compute/v2.1"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGeaEs1e1l0JQfQv46V0rafxZeDqIUmnRcJ0rJoglaXL test@kumo"
USER_DATA = b"#cloud-config\nruncmd:\n  - [touch, /var/lib/kumo-ran]\n"
NET = "net-1"


def _boot(cloud: Cloud, name: str = "web-1") -> str:
    with cloud.client() as c:
        resp = c.post(f"{API}/os-keypairs", json={"keypair": {"name": "mykey", "public_key": KEY}})
        assert resp.status_code in (200, 201), resp.text
        body = {
            "server": {
                "name": name,
                "flavorRef": make_flavor(c, "md"),
                "imageRef": upload_image(c, name="md", content=b"x" * 64),
                "networks": "none",
                "key_name": "mykey",
                "user_data": base64.b64encode(USER_DATA).decode(),
                "metadata": {"role": "web", "tier": "1"},
            }
        }
        resp = c.post(f"{API}/servers", json=body, headers={"OpenStack-API-Version": "compute 2.37"})
        assert resp.status_code == 202, resp.text
        return str(resp.json()["server"]["id"])


def _agent(cloud: Cloud) -> httpx.Client:
    headers = {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")}
    return httpx.Client(base_url=f"{cloud.url}/internal/v1", headers=headers, timeout=30)


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_the_internal_api_serves_the_bundle(request: pytest.FixtureRequest, backend_name: str) -> None:
    cloud: Cloud = request.getfixturevalue("pg_cloud" if backend_name == "postgresql" else "cloud")
    uuid = _boot(cloud)
    with _agent(cloud) as agent:
        resp = agent.get(f"/instances/{uuid}/metadata")
        assert resp.status_code == 200, resp.text
        bundle = Bundle.model_validate_json(resp.content)
        missing = agent.get("/instances/00000000-0000-4000-8000-000000000000/metadata")
        assert missing.status_code == 404 and "itemNotFound" in missing.json()
        assert read_bundle(agent, uuid) == bundle  # what a driver building a config drive calls
        assert read_bundle(agent, "00000000-0000-4000-8000-000000000000") is None
    assert (bundle.uuid, bundle.name, bundle.hostname) == (uuid, "web-1", "web-1")
    assert [(k.name, k.type, k.data) for k in bundle.public_keys] == [("mykey", "ssh", KEY)]
    assert bundle.meta == {"role": "web", "tier": "1"}
    assert bundle.user_data() == USER_DATA
    assert bundle.ec2_instance_id.startswith("i-") and bundle.ec2_image_id.startswith("ami-")
    assert bundle.instance_type == "md" and bundle.ports == []
    unauthenticated = httpx.get(f"{cloud.url}/internal/v1/instances/{uuid}/metadata", timeout=10)
    assert unauthenticated.status_code == 401


def test_the_bundle_of_an_instance_without_ports_is_read_in_three_statements(cloud: Cloud) -> None:
    """Its row, its key pair's type, its ports (none): flat reads by key, whatever its metadata."""
    uuid = _boot(cloud)
    db = database(cloud)
    statements: list[str] = []

    def count(*args: Any) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):  # not the BEGIN of SQLite's transactions
            statements.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.read() as session:
            bundle = backend.read_bundle(session, uuid)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
        db.engine.dispose()
    assert bundle.public_keys and len(statements) <= 3, statements
    assert not any(" JOIN " in s.upper() for s in statements)


class CountingSource(ApiBundleSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[str] = []

    async def __call__(self, instance_uuid: str) -> Bundle | None:
        self.reads.append(instance_uuid)
        return await super().__call__(instance_uuid)


@pytest.fixture
def served(cloud: Cloud) -> Iterator[tuple[MetadataService, CountingSource, str, str]]:
    """A server, and the metadata service serving its network on 127.0.0.1 (its address)."""
    uuid = _boot(cloud)
    source = CountingSource(cloud.url, {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")})
    service = MetadataService(source, ttl=15).start()
    host, port = service.listen(NET, "127.0.0.1", 0)
    service.sources.set(NET, "127.0.0.1", uuid)
    try:
        yield service, source, f"http://{host}:{port}", uuid
    finally:
        service.stop()


def test_the_responder_answers_over_http_from_one_backend_read(
    served: tuple[MetadataService, CountingSource, str, str],
) -> None:
    service, source, url, uuid = served
    with httpx.Client(base_url=url, timeout=10) as guest:
        meta = guest.get("/openstack/latest/meta_data.json")
        assert meta.status_code == 200 and meta.headers["content-type"] == "application/json"
        assert json.loads(meta.content)["public_keys"] == {"mykey": KEY}
        assert guest.get("/openstack/latest/user_data").content == USER_DATA
        assert guest.get("/2009-04-04/meta-data/public-keys/0/openssh-key").text == KEY
        assert guest.get("/latest/meta-data/hostname").text == "web-1.novalocal"
        assert guest.get("/latest/meta-data/nope").status_code == 404
        assert guest.head("/openstack/latest/user_data").content == b""
        assert guest.post("/openstack/latest/password", content=b"x").status_code == 405
    assert source.reads == [uuid]
    # Another source address on loopback is no instance of this network.
    stranger = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=url, timeout=10, transport=stranger) as other:
        assert other.get("/openstack/latest/meta_data.json").status_code == 404
    # The entry is dropped: the next request reads the API again, once.
    service.cache.forget(uuid)
    with httpx.Client(base_url=url, timeout=10) as guest:
        assert guest.get("/openstack").status_code == 200
        assert guest.get("/openstack/latest/meta_data.json").status_code == 200
    assert source.reads == [uuid, uuid]


def test_a_malformed_request_is_refused_and_closed(
    served: tuple[MetadataService, CountingSource, str, str],
) -> None:
    _, _, url, _ = served
    host, port = url.removeprefix("http://").split(":")
    for raw, status in [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
    ]:
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(raw)
            answer = conn.recv(1024)
            assert answer.split(b" ")[1] == status
            assert b"Connection: close" in answer


def test_cloud_init_crawls_the_responder(served: tuple[MetadataService, CountingSource, str, str]) -> None:
    openstack = cloudinit("cloudinit.sources.helpers.openstack")
    ec2 = cloudinit("cloudinit.sources.helpers.ec2")
    _, source, url, uuid = served

    class Reader(openstack.MetadataReader):  # type: ignore[misc,name-defined]
        def _read_ec2_metadata(self) -> Any:  # cloud-init reads EC2 at 169.254.169.254: here instead
            return ec2.get_instance_metadata(api_version="2009-04-04", metadata_address=url, retries=0)

    results = Reader(url, retries=0).read_v2()
    assert results["metadata"]["uuid"] == uuid
    assert results["metadata"]["public_keys"] == {"mykey": KEY}
    assert results["metadata"]["meta"] == {"role": "web", "tier": "1"}
    assert results["userdata"] == USER_DATA
    assert results["networkdata"] == {"links": [], "networks": [], "services": []}
    assert results["ec2-metadata"]["public-keys"] == {"mykey": KEY}
    assert results["ec2-metadata"]["placement"] == {"availability-zone": "nova"}
    assert source.reads == [uuid]


def test_the_libvirt_drivers_config_drive_is_built_from_the_api(cloud: Cloud, tmp_path: Path) -> None:
    """The driver's default hook, through the agent's link to a real API: the drive holds the
    same meta_data.json the metadata service serves."""
    uuid = _boot(cloud, name="cd-1")
    with _agent(cloud) as agent:
        drive = ApiConfigDrive(agent)({"uuid": uuid, "config_drive": "True"}, tmp_path)
        bundle = read_bundle(agent, uuid)
    assert drive == tmp_path / "config.iso" and bundle is not None
    found = configdrive.read(drive)
    meta = json.loads(found["openstack/latest/meta_data.json"])
    assert (meta["uuid"], meta["name"], meta["meta"]) == (uuid, "cd-1", {"role": "web", "tier": "1"})
    assert found["openstack/latest/user_data"] == USER_DATA


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_the_admin_pass_reaches_its_own_instance_metadata_only(
    request: pytest.FixtureRequest, backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The adminPass a create answers is the one in that server's meta_data.json; another
    server's is its own; no log line, error body nor server view shows it."""
    cloud: Cloud = request.getfixturevalue("pg_cloud" if backend_name == "postgresql" else "cloud")
    secret = "Adm1n-pass-only-for-web-1"
    caplog.set_level("DEBUG")
    with cloud.client() as c:
        flavor, image = make_flavor(c, "ap"), upload_image(c, name="ap", content=b"x" * 64)

        def create(name: str, **more: Any) -> httpx.Response:
            server = {"name": name, "flavorRef": flavor, "imageRef": image, "networks": "none", **more}
            return c.post(
                f"{API}/servers", json={"server": server}, headers={"OpenStack-API-Version": "compute 2.37"}
            )

        first = create("web-1", adminPass=secret)
        assert first.status_code == 202 and first.json()["server"]["adminPass"] == secret
        second = create("web-2")
        assert second.status_code == 202, second.text
        made_up = second.json()["server"]["adminPass"]
        refused = create("web-3", adminPass=secret, flavorRef="no-such-flavor")
        assert refused.status_code in (400, 404) and secret not in refused.text
        ids = first.json()["server"]["id"], second.json()["server"]["id"]
        shown = [c.get(f"{API}/servers/{i}").text for i in ids] + [c.get(f"{API}/servers/detail").text]
        assert not any(secret in text or made_up in text for text in shown)
    with _agent(cloud) as agent:
        metas = [
            json.loads(render_path(Bundle.model_validate_json(agent.get(f"/instances/{i}/metadata").content)))
            for i in ids
        ]
    assert metas[0]["admin_pass"] == secret and metas[1]["admin_pass"] == made_up != secret
    # ... for the config drive only: the metadata service's source drops it before its cache.
    source = ApiBundleSource(cloud.url, {AGENT_TOKEN_HEADER: cloud.settings.secret("agent_token")})

    async def served() -> list[Bundle | None]:
        try:
            return [await source(i) for i in ids]
        finally:
            await source.aclose()

    for bundle in asyncio.run(served()):
        assert bundle is not None and bundle.admin_pass is None
        assert "admin_pass" not in json.loads(render_path(bundle))
    assert any(r.name.startswith("kumo") for r in caplog.records)  # the API logs here, in-process
    assert secret not in caplog.text and made_up not in caplog.text


def render_path(bundle: Bundle) -> bytes:
    return render.render(bundle, "/openstack/latest/meta_data.json", b"s" * 512).body
