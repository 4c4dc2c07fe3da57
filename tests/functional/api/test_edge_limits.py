"""The edge of every API: body and header sizes, NUL and control characters, request ids.

A refused request gets a 4xx in its service's OpenStack error format, never a 500, and a body
over the limit is refused without being read (the answer arrives while it is still being sent).
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import Cloud, start_cloud

MiB = 1024 * 1024
BLOCK = b"x" * (64 * 1024)
REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
RESOURCE_PROVIDER = "/placement/resource_providers"
# One consumer id for the parametrized paths: test ids must be the same in every pytest-xdist worker.
CONSUMER = "5c85c81a-5651-4113-a32b-a515a9f78b83"


# -- a raw HTTP/1.1 client: sends a body as long as the server has not answered yet ------------


def exchange(cloud: Cloud, head: bytes, body: Iterable[bytes] = ()) -> tuple[int, int, dict[str, Any]]:
    """(status, body bytes sent, JSON body) of one request over a fresh connection. Sending stops
    as soon as the server answers or closes."""
    sent = 0
    with socket.create_connection((cloud.server.host, cloud.server.port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in body:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed the connection: its answer is already here
                break
            sent += len(chunk)
        raw = _read_all(sock)
    head_bytes, _, payload = raw.partition(b"\r\n\r\n")
    parsed = {"html": payload.decode()} if payload.startswith(b"<html>") else json.loads(payload)
    return int(head_bytes.split(b" ", 2)[1]), sent, parsed


def error_body(resp: httpx.Response) -> dict[str, Any]:
    """An error's JSON body, or {"html": text} for Glance's HTML answer (to `Accept: */*`)."""
    if resp.headers["content-type"].startswith("text/html"):
        return {"html": resp.text}
    return resp.json()  # type: ignore[no-any-return]


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # after the answer: the server did not read the rest
            return data
        if not chunk:
            return data
        data += chunk


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: kumo", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def blocks(total: int) -> Iterator[bytes]:
    for _ in range(total // len(BLOCK)):
        yield BLOCK


def chunked(total: int) -> Iterator[bytes]:
    for block in blocks(total):
        yield b"%x\r\n%s\r\n" % (len(block), block)
    yield b"0\r\n\r\n"


# -- each service's error format ------------------------------------------------------------


def assert_error(path: str, status: int, body: dict[str, Any]) -> None:
    """`body` is an error of `status` in the format of the service at `path`."""
    if path.startswith("/identity"):
        assert body["error"]["code"] == status and body["error"]["message"]
    elif path.startswith("/image"):  # Glance (webob): HTML unless JSON is asked for
        if "html" in body:
            assert f"<h1>{status} " in body["html"]
        else:
            assert body["code"].startswith(f"{status} ") and body["message"] and body["title"]
    elif path.startswith("/placement"):
        assert body["errors"][0]["status"] == status and body["errors"][0]["detail"]
    elif path.startswith("/networking"):  # Neutron
        assert body["NeutronError"]["type"] and body["NeutronError"]["message"]
    elif path.startswith("/baremetal"):  # Ironic: the fault is a JSON document in a string
        fault = json.loads(body["error_message"])
        assert fault["faultcode"] == ("Client" if status < 500 else "Server") and fault["faultstring"]
    else:  # Nova (compute, stock, internal): {"badRequest": {"code": 400, "message": ...}}
        ((_, fault),) = body.items()
        assert fault["code"] == status and fault["message"]


# -- body size ------------------------------------------------------------------------------


def test_a_100_mb_login_body_is_refused_before_it_is_read(cloud: Cloud) -> None:
    rss = psutil.Process().memory_info().rss
    head = request_head(
        "POST", "/identity/v3/auth/tokens", "Content-Type: application/json", f"Content-Length: {100 * MiB}"
    )
    status, sent, body = exchange(cloud, head, blocks(100 * MiB))
    assert status == 413
    assert body["error"]["code"] == 413 and "4194304" in body["error"]["message"]
    assert sent < 20 * MiB  # the answer came while the body was still being sent
    assert psutil.Process().memory_info().rss - rss < 40 * MiB
    assert httpx.get(f"{cloud.url}/identity/v3").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/identity/v3/auth/tokens",
        "/compute/v2.1/servers",
        RESOURCE_PROVIDER,
        f"/placement/allocations/{CONSUMER}",
    ],
)
def test_a_chunked_body_over_the_limit_is_refused_as_it_streams(cloud: Cloud, path: str) -> None:
    method = "PUT" if "/allocations/" in path else "POST"  # the claim fast lane reads bodies too
    rss = psutil.Process().memory_info().rss
    head = request_head(
        method,
        path,
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        f"X-Auth-Token: {cloud.token()}",
    )
    status, sent, body = exchange(cloud, head, chunked(100 * MiB))
    assert status == 413
    assert_error(path, 413, body)
    assert sent < 30 * MiB
    assert psutil.Process().memory_info().rss - rss < 40 * MiB


@pytest.fixture
def small_limit_cloud(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cloud]:
    """A cloud whose request bodies may hold 1 MiB."""
    monkeypatch.setenv("KUMO_MAX_REQUEST_BODY_BYTES", str(MiB))
    c = start_cloud(tmp_path, template=sqlite_template)
    yield c
    c.server.stop()


def test_the_body_limit_is_a_setting_and_image_uploads_stream_past_it(small_limit_cloud: Cloud) -> None:
    with small_limit_cloud.client() as c:
        project = b'{"project": {"name": "padded"}}'
        as_json = {"Content-Type": "application/json"}
        fits = c.post("/identity/v3/projects", content=project + b" " * (MiB - len(project)), headers=as_json)
        assert fits.status_code == 201, fits.text
        over = c.post("/identity/v3/projects", content=project + b" " * MiB, headers=as_json)
        assert over.status_code == 413
        assert (
            over.json()["error"]["message"] == "The request body is larger than the limit of 1048576 bytes."
        )

        image = c.post(
            "/image/v2/images", json={"name": "big", "disk_format": "raw", "container_format": "bare"}
        )
        data = bytes(range(256)) * (3 * MiB // 256)
        octets = {"Content-Type": "application/octet-stream"}
        assert (
            c.put(f"/image/v2/images/{image.json()['id']}/file", content=data, headers=octets).status_code
            == 204
        )
        assert c.get(f"/image/v2/images/{image.json()['id']}/file").content == data

        patch = [{"op": "add", "path": "/big", "value": "x" * MiB}]
        refused = c.patch(
            f"/image/v2/images/{image.json()['id']}",
            json=patch,
            headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
        )
        assert refused.status_code == 413 and "<h1>413 Request Entity Too Large</h1>" in refused.text


def test_internal_api_has_its_own_limit(small_limit_cloud: Cloud) -> None:
    """A fleet poll naming many hosts is larger than the public limit and still served."""
    hosts = [f"host-{i:07d}" for i in range(100_000)]  # about 1.5 MB
    resp = httpx.post(
        f"{small_limit_cloud.url}/internal/v1/tasks/poll",
        json={"hosts": hosts, "wait": 0, "busy": []},
        headers={"X-Kumo-Agent-Token": small_limit_cloud.settings.secret("agent_token")},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"tasks": []}
    too_large = f"Content-Length: {small_limit_cloud.settings.max_internal_body_bytes + 1}"
    head = request_head("POST", "/internal/v1/tasks/poll", "Content-Type: application/json", too_large)
    status, _, body = exchange(small_limit_cloud, head)
    assert status == 413
    assert_error("/internal", 413, body)


def test_only_an_agent_gets_the_internal_limit(cloud: Cloud) -> None:
    """Without the agent token an /internal body has the default limit (4 MiB), refused before
    it is read: a stranger cannot make the API buffer 64 MiB per request."""
    body = json.dumps({"hosts": ["host-1"], "wait": 0, "busy": []}).encode() + b" " * (10 * MiB)
    length = f"Content-Length: {len(body)}"
    agent_token = cloud.settings.secret("agent_token")
    for token in ([], ["X-Kumo-Agent-Token: wrong"], [f"X-Kumo-Agent-Token: {agent_token}x"]):
        head = request_head(
            "POST", "/internal/v1/tasks/poll", "Content-Type: application/json", length, *token
        )
        status, sent, answer = exchange(
            cloud, head, [body[i : i + len(BLOCK)] for i in range(0, len(body), len(BLOCK))]
        )
        assert status == 413, (token, answer)
        assert_error("/internal", 413, answer)
        assert "4194304" in next(iter(answer.values()))["message"]
        assert sent < 8 * MiB
    resp = httpx.post(
        f"{cloud.url}/internal/v1/tasks/poll",
        content=body,
        headers={"Content-Type": "application/json", "X-Kumo-Agent-Token": agent_token},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"tasks": []}


@pytest.fixture
def impatient_cloud(
    tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cloud]:
    """A cloud that waits 1 s for a request body."""
    monkeypatch.setenv("KUMO_REQUEST_BODY_TIMEOUT_SECONDS", "1")
    c = start_cloud(tmp_path, template=sqlite_template)
    yield c
    c.server.stop()


def trickle(total: int, every: float) -> Iterator[bytes]:
    for _ in range(total):
        time.sleep(every)
        yield b" "


@pytest.mark.parametrize(
    ("path", "framing"),
    [
        ("/identity/v3/auth/tokens", "Content-Length: 100"),
        ("/compute/v2.1/servers", "Transfer-Encoding: chunked"),
        ("/internal/v1/hosts", "Content-Length: 100"),
    ],
)
def test_a_body_slower_than_the_deadline_is_a_408(impatient_cloud: Cloud, path: str, framing: str) -> None:
    cloud = impatient_cloud
    headers = [
        "Content-Type: application/json",
        framing,
        f"X-Auth-Token: {cloud.token()}",
        f"X-Kumo-Agent-Token: {cloud.settings.secret('agent_token')}",
    ]
    body = trickle(100, 0.1)
    if framing.startswith("Transfer-Encoding"):
        body = (b"1\r\n%s\r\n" % byte for byte in body)
    started = time.monotonic()
    status, _, answer = exchange(cloud, request_head("POST", path, *headers), body)
    assert status == 408, answer
    assert_error(path, 408, answer)
    assert 0.9 < time.monotonic() - started < 5  # the deadline, not the end of the body (10 s)
    assert httpx.get(f"{cloud.url}/identity/v3", timeout=5).status_code == 200


def test_the_server_answers_others_while_a_body_trickles(impatient_cloud: Cloud) -> None:
    """Slow bodies hold no worker: requests beside them are answered at once."""
    cloud = impatient_cloud
    head = request_head(
        "POST", "/compute/v2.1/servers", "Content-Type: application/json", "Content-Length: 100"
    )
    socks = [socket.create_connection((cloud.server.host, cloud.server.port), timeout=10) for _ in range(20)]
    try:
        for sock in socks:
            sock.sendall(head + b" ")
        started = time.monotonic()
        assert httpx.get(f"{cloud.url}/identity/v3", timeout=5).status_code == 200
        assert time.monotonic() - started < 0.9
        for sock in socks:
            raw = _read_all(sock)
            assert raw.startswith(b"HTTP/1.1 408 "), raw[:100]
    finally:
        for sock in socks:
            sock.close()


def test_json_nested_too_deep_is_a_400_on_every_service(cloud: Cloud) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    image = httpx.post(
        f"{cloud.url}/image/v2/images", json={"name": "deep"}, headers={"X-Auth-Token": cloud.token()}
    )
    writes = [
        ("POST", "/identity/v3/auth/tokens", "application/json"),
        ("POST", "/compute/v2.1/servers", "application/json"),
        ("PATCH", f"/image/v2/images/{image.json()['id']}", "application/openstack-images-v2.1-json-patch"),
        ("PUT", f"/placement/allocations/{CONSUMER}", "application/json"),
        ("POST", "/baremetal/v1/nodes", "application/json"),
        ("POST", "/internal/v1/hosts", "application/json"),
    ]
    headers = {"X-Auth-Token": cloud.token(), "X-Kumo-Agent-Token": cloud.settings.secret("agent_token")}
    with httpx.Client(base_url=cloud.url, headers=headers, timeout=30) as c:
        for method, path, content_type in writes:
            resp = c.request(method, path, content=deep, headers={"Content-Type": content_type})
            assert resp.status_code == 400, f"{method} {path}: {resp.text}"
            assert_error(path, 400, error_body(resp))


# -- header size ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        ["X-Big: " + "a" * (100 * 1024)],  # one header, arriving whole
        [f"X-Many-{i}: {'b' * 20}" for i in range(5000)],  # many headers
    ],
)
def test_an_oversized_head_is_a_431(cloud: Cloud, headers: list[str]) -> None:
    status, _, body = exchange(cloud, request_head("GET", "/compute/v2.1/servers", *headers))
    assert status == 431
    assert body["computeFault"]["code"] == 431
    assert httpx.get(f"{cloud.url}/compute/").status_code == 200


def test_a_head_that_never_ends_is_cut_off(cloud: Cloud) -> None:
    rss = psutil.Process().memory_info().rss
    status, sent, body = exchange(
        cloud, b"GET /image/v2/images HTTP/1.1\r\nHost: kumo\r\nX-Endless: ", blocks(200 * MiB)
    )
    assert status == 431 and "<h1>431 Request Header Fields Too Large</h1>" in body["html"]
    assert sent < 20 * MiB
    assert psutil.Process().memory_info().rss - rss < 40 * MiB


# -- NUL and control characters, on every service ------------------------------------------

# (path prefix to report errors under, a path with a NUL, a listing with a NUL filter,
#  a write whose JSON body holds a NUL: method, path, body)
SERVICES: list[tuple[str, str, str, tuple[str, str, dict[str, Any]]]] = [
    (
        "/identity",
        "/identity/v3/projects/%00",
        "/identity/v3/projects?name=%00",
        (
            "POST",
            "/identity/v3/auth/tokens",
            {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {"user": {"name": "admin\u0000", "password": "x"}},
                    }
                }
            },
        ),
    ),
    (
        "/compute",
        "/compute/v2.1/servers/%00",
        "/compute/v2.1/servers?name=%00",
        ("POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "k\u0000"}}),
    ),
    (
        "/compute/v2.1/os-kumo-stock-requests",
        "/compute/v2.1/os-kumo-stock-requests/%00",
        "/compute/v2.1/os-kumo-stock-requests?status=%00",
        ("POST", "/compute/v2.1/os-kumo-stock-requests", {"stock_request": {"resource_class": "\u0000"}}),
    ),
    (
        "/image",
        "/image/v2/images/%00",
        "/image/v2/images?name=%00",
        ("POST", "/image/v2/images", {"name": "i\u0000", "disk_format": "raw", "container_format": "bare"}),
    ),
    (
        "/networking",
        "/networking/v2.0/networks/%00",
        "/networking/v2.0/networks?name=%00",
        ("POST", "/networking/v2.0/networks", {"network": {"name": "n\u0000"}}),
    ),
    (
        "/placement",
        f"{RESOURCE_PROVIDER}/%00",
        f"{RESOURCE_PROVIDER}?name=%00",
        ("PUT", f"/placement/allocations/{CONSUMER}", {"allocations": {}, "project_id": "\u0000"}),
    ),
    (
        "/baremetal",
        "/baremetal/v1/nodes/%00",
        "/baremetal/v1/nodes?driver=%00",
        ("POST", "/baremetal/v1/nodes", {"driver": "fake-hardware", "name": "n\u0000"}),
    ),
    (
        "/internal",
        "/internal/v1/hosts/%00/heartbeat",
        "/internal/v1/hosts/h1/tasks/poll?wait=%00",
        ("POST", "/internal/v1/hosts", {"name": "h\u0000", "vcpus": 1, "memory_mb": 1, "disk_gb": 1}),
    ),
]


def _nul_requests_are_400s(cloud: Cloud) -> None:
    token = cloud.token()
    headers = {
        "X-Auth-Token": token,
        "X-Kumo-Agent-Token": cloud.settings.secret("agent_token"),
        "OpenStack-API-Version": "compute 2.64",
        "X-OpenStack-Ironic-API-Version": "1.65",
    }
    with httpx.Client(base_url=cloud.url, headers=headers, timeout=30) as c:
        for prefix, nul_path, nul_query, (method, write_path, body) in SERVICES:
            put_or_get = "PUT" if nul_path.endswith("/heartbeat") else "GET"
            for resp in (
                c.request(put_or_get, nul_path),
                c.request("POST" if "/tasks/poll" in nul_query else "GET", nul_query, json={}),
                c.request(method, write_path, json=body),
            ):
                where = f"{resp.request.method} {resp.request.url}"
                assert resp.status_code == 400, f"{where}: {resp.status_code} {resp.text}"
                assert_error(prefix, 400, error_body(resp))
            raw_head = request_head("GET", nul_path.replace("%00", "x"), f"X-Auth-Token: {token}\x00")
            status, _, raw_body = exchange(cloud, raw_head)
            assert status == 400, f"NUL header on {prefix}"
            assert_error(prefix, 400, raw_body)
        # An unpaired surrogate escape is no UTF-8 string, for no database.
        login = b'{"auth": {"identity": {"methods": ["password"], "password": {"user": '
        login += b'{"name": "admin\\ud800", "password": "x"}}}}}'
        resp = c.post("/identity/v3/auth/tokens", content=login, headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
        assert_error("/identity", 400, resp.json())
        # Newlines and tabs inside JSON strings, an escaped backslash before "u0000" and an emoji
        # escaped as a surrogate pair stay legal.
        description = "line one\nline two\tC:\\u0000 \U0001f600"
        project = json.dumps({"project": {"name": "legal", "description": description}}, ensure_ascii=True)
        assert "\\ud83d\\ude00" in project
        resp = c.post("/identity/v3/projects", content=project, headers={"Content-Type": "application/json"})
        assert resp.status_code == 201, resp.text
        assert resp.json()["project"]["description"] == description


def test_nul_and_control_characters_are_400s_on_every_service(cloud: Cloud) -> None:
    _nul_requests_are_400s(cloud)


def test_a_newline_in_the_path_forges_no_log_line(cloud: Cloud, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kumo.api")
    resp = httpx.get(f"{cloud.url}/compute/v2.1/servers/x%0A2026-12-06 ERROR forged")
    assert resp.status_code == 400 and resp.json()["badRequest"]["code"] == 400
    lines = [r.getMessage() for r in caplog.records if r.name == "kumo.api" and "forged" in r.getMessage()]
    assert lines and all("\n" not in line for line in lines), lines


def test_nul_and_control_characters_are_400s_on_postgresql(pg_cloud: Cloud) -> None:
    _nul_requests_are_400s(pg_cloud)


# -- request ids ----------------------------------------------------------------------------


def _request_ids_are_ours(cloud: Cloud) -> None:
    with cloud.client(microversion="2.64") as c:
        flavor = c.post(
            "/compute/v2.1/flavors", json={"flavor": {"name": "f", "vcpus": 1, "ram": 64, "disk": 1}}
        )
        image = c.post(
            "/image/v2/images", json={"name": "i", "disk_format": "raw", "container_format": "bare"}
        )
        octets = {"Content-Type": "application/octet-stream"}
        assert c.put(f"/image/v2/images/{image.json()['id']}/file", content=b"x", headers=octets).is_success
        server: dict[str, Any] = {"name": "s", "flavorRef": flavor.json()["flavor"]["id"]}
        server |= {"imageRef": image.json()["id"], "networks": "none"}

        def create(request_id: str) -> str:
            resp = c.post(
                "/compute/v2.1/servers",
                json={"server": server},
                headers={"X-OpenStack-Request-Id": request_id},
            )
            assert resp.status_code == 202, resp.text
            answered = resp.headers["x-openstack-request-id"]
            assert REQUEST_ID.fullmatch(answered) and resp.headers["x-compute-request-id"] == answered
            actions = c.get(f"/compute/v2.1/servers/{resp.json()['server']['id']}/os-instance-actions").json()
            assert actions["instanceActions"][0]["request_id"] == answered
            return answered

        for malformed in ("req-" + "a" * 70, "req-" + str(uuid.uuid4()) + "x", "x" * 300, "req-" + "G" * 36):
            assert create(malformed) != malformed
        ours = f"req-{uuid.uuid4()}"
        assert create(ours) == ours


def test_a_malformed_request_id_is_replaced(cloud: Cloud) -> None:
    _request_ids_are_ours(cloud)


def test_a_malformed_request_id_is_replaced_on_postgresql(pg_cloud: Cloud) -> None:
    _request_ids_are_ours(pg_cloud)
