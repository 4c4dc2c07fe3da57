"""The agent's precache role over loopback: the peer endpoint (tickets, Range, re-verify), the
receiver's verification and fallback, the per-transfer cap, and pinning."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kumo.agent import precache as agent_precache
from kumo.agent.agent import Agent
from kumo.agent.drivers.fake import FakeDriver
from kumo.agent.imagecache import HttpImageSource, ImageCache, ImageMeta
from kumo.agent.precache import TICKET_HEADER, PeerServer, Precacher, throttled
from kumo.agent.protocol import TaskOut
from kumo.compute.precache import tickets
from kumo.work.kinds import PrecachePayload

IMG = "11111111-1111-4111-8111-111111111111"
KEY = tickets.derive_key("token")
DATA = os.urandom(3 * 1024 * 1024 + 5)


class Origin:
    def __init__(self, data: bytes = DATA) -> None:
        self.data, self.served = data, 0

    def metadata(self, image_id: str) -> ImageMeta:
        digest = hashlib.sha512(DATA).hexdigest()
        return ImageMeta(image_id, "active", "raw", len(DATA), "sha512", digest)

    def chunks(self, image_id: str) -> Iterator[bytes]:
        for i in range(0, len(self.data), 1024 * 1024):
            self.served += len(self.data[i : i + 1024 * 1024])
            yield self.data[i : i + 1024 * 1024]


def _ticket(receiver: str) -> tuple[str, str]:
    def mint(image_id: str, sender: str) -> str:
        return tickets.mint(KEY, image_id, sender, receiver, int(time.time()) + 60)

    return receiver, mint  # type: ignore[return-value]


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[PeerServer]:
    origin = Origin()
    cache = ImageCache(tmp_path / "holder", origin)
    cache.fill(origin.metadata(IMG), origin.chunks(IMG), "origin")
    server = PeerServer("holder", cache, KEY).start()
    yield server
    server.stop()


def _payload(*sources: dict[str, str], rate: int = 0) -> PrecachePayload:
    return PrecachePayload("job", IMG, list(sources), rate, 3600)


def test_the_peer_endpoint_wants_a_ticket_for_this_image_and_host(holder: PeerServer) -> None:
    url = f"{holder.url}/cache/{IMG}"
    assert httpx.get(url).status_code == 403
    for wrong in (
        tickets.mint(KEY, IMG, "someone-else", "r", int(time.time()) + 60),
        tickets.mint(KEY, IMG, "holder", "r", int(time.time()) - 1),
        tickets.mint(tickets.derive_key("x"), IMG, "holder", "r", int(time.time()) + 60),
    ):
        assert httpx.get(url, headers={TICKET_HEADER: wrong}).status_code == 403
    good = {TICKET_HEADER: tickets.mint(KEY, IMG, "holder", "r", int(time.time()) + 60)}
    full = httpx.get(url, headers=good)
    assert full.status_code == 200 and full.content == DATA
    ranged = httpx.get(url, headers={**good, "Range": "bytes=100-"})
    assert ranged.status_code == 206 and ranged.content == DATA[100:]
    other = "22222222-2222-4222-8222-222222222222"
    other_ticket = {TICKET_HEADER: tickets.mint(KEY, other, "holder", "r", int(time.time()) + 60)}
    assert httpx.get(f"{holder.url}/cache/{other}", headers=other_ticket).status_code == 404


def test_a_receiver_copies_from_its_peer(holder: PeerServer, tmp_path: Path) -> None:
    origin = Origin()
    receiver, mint = _ticket("receiver")
    cache = ImageCache(tmp_path / "receiver", origin)
    run = Precacher(receiver, cache, origin, mint).run  # type: ignore[arg-type]
    result = run(_payload({"source": "peer:holder", "url": holder.url}, {"source": "origin"}))
    assert result.details["state"] == "cached" and result.details["source"] == "peer:holder"
    assert (result.details["bytes_from_peers"], result.details["bytes_from_origin"]) == (len(DATA), 0)
    assert origin.served == 0 and holder.served == len(DATA)
    assert (tmp_path / "receiver" / IMG).read_bytes() == DATA
    again = run(_payload({"source": "origin"}))
    assert again.details["state"] == "existing" and origin.served == 0  # never twice


def test_a_corrupt_peer_copy_is_refused_dropped_and_the_next_source_used(
    holder: PeerServer, tmp_path: Path
) -> None:
    copy = tmp_path / "holder" / IMG
    copy.chmod(0o644)
    copy.write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 1]))
    origin = Origin()
    receiver, mint = _ticket("receiver")
    cache = ImageCache(tmp_path / "receiver", origin)
    result = Precacher(receiver, cache, origin, mint).run(  # type: ignore[arg-type]
        _payload({"source": "peer:holder", "url": holder.url}, {"source": "origin"})
    )
    assert result.details["state"] == "cached" and result.details["source"] == "origin"
    (refusal,) = result.details["refused"]
    assert refusal["peer"] == "holder" and refusal["dropped"] is True
    assert not copy.exists()  # the sender re-verified and dropped its bad copy
    assert (tmp_path / "receiver" / IMG).read_bytes() == DATA
    assert result.details["bytes_from_origin"] == len(DATA)


def test_every_source_failing_is_an_error(tmp_path: Path) -> None:
    origin = Origin(data=b"wrong data")
    receiver, mint = _ticket("receiver")
    cache = ImageCache(tmp_path / "receiver", origin)
    result = Precacher(receiver, cache, origin, mint).run(  # type: ignore[arg-type]
        _payload({"source": "peer:gone", "url": "http://127.0.0.1:9"}, {"source": "origin"})
    )
    assert result.details["state"] == "error"
    assert "peer:gone" in result.details["error"] and "origin" in result.details["error"]
    assert not (tmp_path / "receiver" / IMG).exists()
    # both failed as senders: the peer unreachable, the origin's data not its hash
    assert result.details["failed_sources"] == ["peer:gone", "origin"]


def test_a_receivers_own_disk_error_blames_no_sender(
    holder: PeerServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API avoids the holders a failed copy blames; a copy that failed on the receiver's own
    disk must not cost a healthy holder its place."""
    origin = Origin()
    receiver, mint = _ticket("receiver")
    cache = ImageCache(tmp_path / "receiver", origin)

    def disk_full(*args: object, **kwargs: object) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache, "fill", disk_full)
    result = Precacher(receiver, cache, origin, mint).run(  # type: ignore[arg-type]
        _payload({"source": "peer:holder", "url": holder.url}, {"source": "origin"})
    )
    assert result.details["state"] == "error" and "No space left" in result.details["error"]
    assert result.details["failed_sources"] == []


def test_a_ticket_the_api_refused_blames_no_sender(holder: PeerServer, tmp_path: Path) -> None:
    """The ticket comes from the API (a 403 when the job no longer plans that transfer): its
    error is no fault of the peer, which was never asked."""
    origin = Origin(data=b"wrong data")

    def refused(image_id: str, sender: str) -> str:
        request = httpx.Request("POST", "http://api/internal/v1/precache/tickets")
        raise httpx.HTTPStatusError("403", request=request, response=httpx.Response(403, request=request))

    cache = ImageCache(tmp_path / "receiver", origin)
    result = Precacher("receiver", cache, origin, refused).run(
        _payload({"source": "peer:holder", "url": holder.url}, {"source": "origin"})
    )
    assert result.details["state"] == "error" and "peer:holder" in result.details["error"]
    assert holder.served == 0
    assert result.details["failed_sources"] == ["origin"]  # its data is not its hash; not the peer


@pytest.mark.parametrize("status", [404, 500])
def test_a_peer_that_answers_an_error_is_blamed(tmp_path: Path, status: int) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status)

    origin = Origin()
    receiver, mint = _ticket("receiver")
    cache = ImageCache(tmp_path / "receiver", origin)
    peers = httpx.Client(transport=httpx.MockTransport(answer))
    result = Precacher(receiver, cache, origin, mint, peers=peers).run(  # type: ignore[arg-type]
        _payload({"source": "peer:bad", "url": "http://bad"})
    )
    assert result.details["state"] == "error" and str(status) in result.details["error"]
    assert result.details["failed_sources"] == ["peer:bad"]


def test_an_origin_that_answers_an_error_failed_as_a_sender(tmp_path: Path) -> None:
    digest = hashlib.sha512(DATA).hexdigest()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/file"):
            return httpx.Response(503)
        body = {"id": IMG, "status": "active", "disk_format": "raw", "size": len(DATA)}
        return httpx.Response(200, json={**body, "os_hash_algo": "sha512", "os_hash_value": digest})

    origin = HttpImageSource(httpx.Client(base_url="http://api", transport=httpx.MockTransport(answer)))
    receiver, mint = _ticket("receiver")
    cache = ImageCache(tmp_path / "receiver", origin)
    result = Precacher(receiver, cache, origin, mint).run(_payload({"source": "origin"}))  # type: ignore[arg-type]
    assert result.details["state"] == "error" and "503" in result.details["error"]
    assert result.details["failed_sources"] == ["origin"]


def test_a_write_failing_on_the_receivers_disk_blames_no_sender(
    holder: PeerServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real fill, its partial file unwritable: the peer sent good data, the disk failed."""
    origin = Origin()
    receiver, mint = _ticket("receiver")
    cache = ImageCache(tmp_path / "receiver", origin)

    def failing_fsync(fd: int) -> None:  # after the whole stream was written: the peer sent it all
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    result = Precacher(receiver, cache, origin, mint).run(  # type: ignore[arg-type]
        _payload({"source": "peer:holder", "url": holder.url})
    )
    assert result.details["state"] == "error" and "Input/output error" in result.details["error"]
    assert result.details["failed_sources"] == []


def test_the_transfer_cap_holds() -> None:
    started = time.monotonic()
    sent = sum(len(c) for c in throttled(iter([b"x" * 100_000] * 5), rate=1_000_000))
    elapsed = time.monotonic() - started
    assert sent == 500_000 and 0.45 <= elapsed < 1.5


def test_the_cap_is_a_token_bucket_with_one_second_of_burst() -> None:
    """After a 10 s stall, 3 MB at 1 MB/s still takes 2 s (1 s of burst), not 0 as an average
    since the start would allow."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def stalled() -> Iterator[bytes]:
        now[0] += 10.0
        yield from [b"x" * 100_000] * 30

    sent = sum(len(c) for c in throttled(stalled(), 1_000_000, clock=lambda: now[0], sleep=sleep))
    assert sent == 3_000_000 and now[0] == pytest.approx(12.0)


def test_a_precached_image_is_pinned_against_eviction(tmp_path: Path) -> None:
    origin = Origin()
    cache = ImageCache(tmp_path / "c", origin, max_age=0)
    cache.fill(origin.metadata(IMG), origin.chunks(IMG), "origin")
    cache.pin(IMG, time.time() + 3600)
    assert cache.evict(now=time.time() + 60) == []
    assert cache.evict(now=time.time() + 7200) == [IMG]


def test_an_agent_runs_precache_copies_on_workers_of_their_own(tmp_path: Path) -> None:
    """A copy of minutes never sits in front of a guest's task or a firewall converge."""
    agent = Agent("http://127.0.0.1:9", "hv-pc", FakeDriver("hv-pc"), "token", image_cache=tmp_path / "cache")
    try:
        copy = TaskOut(id="t1", kind="precache", instance_uuid=None, payload={}, request_id=None)
        spawn = TaskOut(id="t2", kind="spawn", instance_uuid="u1", payload={}, request_id=None)
        agent._dispatch(copy)
        agent._dispatch(spawn)
        assert sum(q.qsize() for q in agent._precache_queues) == 1
        assert sum(q.qsize() for q in agent._queues) == 1
        assert agent.peer is not None and agent.peer.url.startswith("http://127.0.0.1:")
    finally:
        assert agent.peer is not None
        agent.peer.httpd.server_close()
        agent.client.close()


def test_range_past_the_end_is_416_and_unicode_digits_are_no_range(holder: PeerServer) -> None:
    good = {TICKET_HEADER: tickets.mint(KEY, IMG, "holder", "r", int(time.time()) + 60)}
    url = f"{holder.url}/cache/{IMG}"
    past = httpx.get(url, headers={**good, "Range": f"bytes={len(DATA)}-"})
    assert past.status_code == 416 and past.headers["Content-Range"] == f"bytes */{len(DATA)}"
    odd = httpx.get(url, headers={**good, "Range": "bytes=\u00b2-".encode("latin-1")})  # type: ignore[dict-item]
    assert odd.status_code == 200 and odd.content == DATA  # not a range: the whole copy


def test_a_holder_sends_at_most_its_slots_at_once_and_answers_503_beyond(tmp_path: Path) -> None:
    origin = Origin()
    cache = ImageCache(tmp_path / "holder", origin)
    cache.fill(origin.metadata(IMG), origin.chunks(IMG), "origin")
    server = PeerServer("holder", cache, KEY, slots=1).start()
    good = {TICKET_HEADER: tickets.mint(KEY, IMG, "holder", "r", int(time.time()) + 60)}
    try:
        server.slots.acquire()  # a copy in flight holds the one slot
        busy = httpx.get(f"{server.url}/cache/{IMG}", headers=good)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1" and server.busy == 1
        server.slots.release()
        assert httpx.get(f"{server.url}/cache/{IMG}", headers=good).status_code == 200  # freed
    finally:
        server.stop()


def test_reverify_drops_a_bad_copy_only_when_unused_and_a_used_one_is_served_no_more(tmp_path: Path) -> None:
    origin = Origin()
    cache = ImageCache(tmp_path / "c", origin)
    cache.fill(origin.metadata(IMG), origin.chunks(IMG), "origin")
    assert cache.reverify(IMG) == (True, False)
    path = tmp_path / "c" / IMG
    os.chmod(path, 0o644)
    path.write_bytes(b"y" + DATA[1:])  # the disk rotted
    cache.acquire(IMG, "instance-1")  # …under a running instance
    assert cache.reverify(IMG) == (False, False)  # kept: in use, not dropped
    assert path.exists() and cache.open_verified(IMG) is None  # suspect: no peer gets it
    cache.release_owner("instance-1")
    assert cache.reverify(IMG) == (False, True) and not path.exists()  # unused: dropped


def test_a_bad_copy_in_use_is_refused_kept_suspect_and_served_no_more(
    holder: PeerServer, tmp_path: Path
) -> None:
    copy = tmp_path / "holder" / IMG
    copy.chmod(0o644)
    copy.write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 1]))
    holder.cache.acquire(IMG, "instance-1")  # a guest runs from it
    origin = Origin()
    receiver, mint = _ticket("receiver")
    result = Precacher(receiver, ImageCache(tmp_path / "receiver", origin), origin, mint).run(  # type: ignore[arg-type]
        _payload({"source": "peer:holder", "url": holder.url}, {"source": "origin"})
    )
    assert result.details["state"] == "cached" and result.details["source"] == "origin"
    (refusal,) = result.details["refused"]
    assert (refusal["dropped"], refusal["suspect"]) == (False, True)
    assert copy.exists()  # kept for its instance…
    good = {TICKET_HEADER: tickets.mint(KEY, IMG, "holder", "r", int(time.time()) + 60)}
    assert httpx.get(f"{holder.url}/cache/{IMG}", headers=good).status_code == 404  # …served to no one
    # asked to precache it again, the holder says its copy is suspect (an error), not `existing`
    again = Precacher("holder", holder.cache, origin, mint).run(_payload({"source": "origin"}))  # type: ignore[arg-type]
    assert (again.details["state"], again.details["suspect"]) == ("error", True)
    assert origin.served == len(DATA)  # once, for the receiver: a copy in use is never replaced


def test_a_peer_without_the_image_is_refused_as_missing_and_the_next_source_used(tmp_path: Path) -> None:
    """A holder marked from a stale cache report answers 404: the refusal says `missing` (the
    API queues that holder again) and the receiver copies from its next source."""
    origin = Origin()
    empty = PeerServer("holder", ImageCache(tmp_path / "holder", origin), KEY).start()
    try:
        receiver, mint = _ticket("receiver")
        cache = ImageCache(tmp_path / "receiver", origin)
        result = Precacher(receiver, cache, origin, mint).run(  # type: ignore[arg-type]
            _payload({"source": "peer:holder", "url": empty.url}, {"source": "origin"})
        )
    finally:
        empty.stop()
    assert result.details["state"] == "cached" and result.details["source"] == "origin"
    (refusal,) = result.details["refused"]
    assert (refusal["peer"], refusal["missing"], refusal["dropped"]) == ("holder", True, True)


def test_progress_carries_the_attempt_and_a_409_aborts_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_precache, "PROGRESS_EVERY", 0.0)
    reports: list[tuple[str, str, str, int, int | None]] = []

    def progress(job: str, image: str, source: str, done: int, attempt: int | None) -> bool:
        reports.append((job, image, source, done, attempt))
        return attempt == 2  # the API's current attempt is 2: attempt 3's copy is not wanted

    origin = Origin()
    receiver, mint = _ticket("receiver")
    for attempt, state in ((3, "error"), (2, "cached")):
        cache = ImageCache(tmp_path / f"receiver-{attempt}", origin)
        payload = PrecachePayload("job", IMG, [{"source": "origin"}], 0, 3600, attempt)
        result = Precacher(receiver, cache, origin, mint, progress=progress).run(payload)  # type: ignore[arg-type]
        assert result.details["state"] == state
        assert reports and all(r[4] == attempt and r[:3] == ("job", IMG, "origin") for r in reports)
        reports.clear()
    assert (
        "409"
        in Precacher(receiver, ImageCache(tmp_path / "r3", origin), origin, mint, progress=progress)
        .run(  # type: ignore[arg-type]
            PrecachePayload("job", IMG, [{"source": "origin"}], 0, 3600, 1)
        )
        .details["error"]
    )


def test_the_cache_reports_only_its_verified_copies_a_peer_may_be_served(tmp_path: Path) -> None:
    origin = Origin()
    cache = ImageCache(tmp_path / "cache", origin)
    other = "22222222-2222-4222-8222-222222222222"
    for image_id in (IMG, other):
        cache.fill(origin.metadata(image_id), origin.chunks(image_id), "origin")
    assert cache.verified_ids() == sorted([IMG, other])
    (tmp_path / "cache" / other).chmod(0o644)
    (tmp_path / "cache" / other).write_bytes(b"bad")
    cache.acquire(other, "instance-1")  # in use: a bad copy is kept, suspect
    assert cache.reverify(other) == (False, False)
    assert cache.verified_ids() == [IMG]
    (tmp_path / "cache" / IMG).unlink()  # data gone, record left: not a copy
    assert cache.verified_ids() == []


def test_a_copy_found_bad_on_verify_makes_the_agent_report_its_cache_again(tmp_path: Path) -> None:
    origin = Origin()
    cache = ImageCache(tmp_path / "holder", origin)
    cache.fill(origin.metadata(IMG), origin.chunks(IMG), "origin")
    calls: list[bool] = []
    server = PeerServer("holder", cache, KEY, changed=lambda: calls.append(True)).start()
    try:
        ticket = {TICKET_HEADER: tickets.mint(KEY, IMG, "holder", "r", int(time.time()) + 60)}
        assert httpx.post(f"{server.url}/cache/{IMG}/verify", headers=ticket).json()["ok"] is True
        assert calls == []  # a good copy changes nothing
        (tmp_path / "holder" / IMG).chmod(0o644)
        (tmp_path / "holder" / IMG).write_bytes(b"y" + DATA[1:])
        assert httpx.post(f"{server.url}/cache/{IMG}/verify", headers=ticket).json()["dropped"] is True
        assert calls == [True] and cache.verified_ids() == []
    finally:
        server.stop()
