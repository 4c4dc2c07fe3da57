"""The agent's side of image precache (kumo/compute/precache): a `precache` task copies an image into
the host's image cache from the sources the API planned, and a small read-only HTTP endpoint
serves the host's verified copies to its rack's peers.

Peer endpoint (`PeerServer`, one per agent, on `host_ip`:any port, registered with the API):
    GET  /cache/{image_id}          the verified copy (Range: bytes=N- resumes; N ≥ size: 416), if
                                    the `X-Kumo-Ticket` header holds a ticket for (image, this host).
                                    At most `slots` (precache_peers_per_holder) copies are sent at
                                    once: one more is answered 503 and its receiver moves on to its
                                    next source (or its task fails back to the planner).
    POST /cache/{image_id}/verify   hash the copy again (a receiver refused it); a bad copy is
                                    dropped. {"ok": bool, "dropped": bool}; same ticket.
Tickets (kumo/compute/precache/tickets.py) are minted by the API per planned transfer; the receiver
asks for one just before it connects.

A receiver never trusts a peer: the image's size and os_hash_value come from the API, and the
cache publishes only data that matches them (`ImageCache.fill`). On a mismatch the receiver asks
the sender to re-verify, records the refusal, and moves to its next source. Every transfer is
capped at the payload's `rate` bytes/s. A precached image is pinned for `pin_seconds`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from kumo.agent.imagecache import (
    DownloadFailed,
    ImageCache,
    ImageCacheError,
    ImageMeta,
    ImageSource,
    ImageVerificationError,
)
from kumo.agent.protocol import TaskResult
from kumo.compute.precache import tickets
from kumo.work.kinds import PrecachePayload

log = logging.getLogger(__name__)

TICKET_HEADER = "X-Kumo-Ticket"
CHUNK = 1024 * 1024
_PATH = re.compile(r"^/cache/([0-9a-fA-F-]{36})(/verify)?$")
_RANGE = re.compile(r"^bytes=([0-9]+)-$", re.ASCII)
MAX_CONNECTIONS = 32  # connections a peer endpoint serves at once; more are closed at once
IDLE_TIMEOUT = 30  # seconds a peer connection may stay silent


class _CappedServer(ThreadingHTTPServer):
    """A threading server that serves at most `cap` connections at once (a thread each)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, cap: int) -> None:
        super().__init__(address, handler)
        self.connections = threading.BoundedSemaphore(cap)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.connections.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.connections.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.connections.release()


def throttled(
    chunks: Iterator[bytes],
    rate: int,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """`chunks`, no faster than `rate` bytes/s (0: as they come): a token bucket that starts
    empty and holds at most one second of tokens, so a stall (a slow source, a slow disk) earns
    a burst of at most `rate` bytes, never the average since the start."""
    if rate <= 0:
        yield from chunks
        return
    tokens, last = 0.0, clock()
    for chunk in chunks:
        now = clock()
        tokens = min(float(rate), tokens + (now - last) * rate) - len(chunk)
        last = now
        if tokens < 0:
            sleep(-tokens / rate)
            last += -tokens / rate
            tokens = 0.0
        yield chunk


# (job id, image id, source, bytes so far, attempt): a copy's progress, reported to the API;
# False when the API no longer wants the copy (409: skipped, cancelled, or a later attempt of
# the same (host, image) is the current one), which aborts it
Progress = Callable[[str, str, str, int, int | None], bool]


class PeerFailed(ImageCacheError):
    """The peer could not serve the image (its answer was not the image)."""


class PeerMissing(PeerFailed):
    """The peer holds no servable copy of the image (404): its holder's record is stale."""


class CopyAborted(Exception):
    """The API no longer wants this copy: it stops, from every source."""


PROGRESS_EVERY = 2.0  # seconds between two progress reports of one copy


class _Counted:
    def __init__(self, chunks: Iterator[bytes], report: Callable[[int], None] | None = None) -> None:
        self.chunks, self.bytes, self.report = chunks, 0, report

    def __iter__(self) -> Iterator[bytes]:
        last = time.monotonic()
        for chunk in self.chunks:
            self.bytes += len(chunk)
            if self.report is not None and time.monotonic() - last >= PROGRESS_EVERY:
                last = time.monotonic()
                self.report(self.bytes)
            yield chunk


class PeerServer:
    """The read-only peer endpoint over this host's image cache."""

    def __init__(
        self,
        host: str,
        cache: ImageCache,
        key: bytes,
        bind: str = "127.0.0.1",
        port: int = 0,
        slots: int = 2,
        max_connections: int = MAX_CONNECTIONS,
        changed: Callable[[], None] | None = None,
    ) -> None:
        """`changed`: called when a re-verification dropped a copy or marked it suspect (the
        agent reports its cache again at once)."""
        self.host, self.cache, self.key = host, cache, key
        self.changed = changed
        self.served = 0  # bytes sent to peers (for tests and the bench)
        self.busy = 0  # refusals: a copy asked for while every slot was taken (503)
        self.slots = threading.BoundedSemaphore(slots)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = IDLE_TIMEOUT

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("peer %s: " + format, server.host, *args)

            def _refuse(self, status: int, why: str) -> None:
                body = why.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _image(self) -> tuple[str, bool] | None:
                match = _PATH.match(self.path.split("?", 1)[0])
                if match is None:
                    self._refuse(404, "no such path")
                    return None
                image_id = match.group(1).lower()
                ticket = self.headers.get(TICKET_HEADER) or ""
                if tickets.check(server.key, ticket, image_id, server.host, time.time()) is None:
                    self._refuse(403, "no valid ticket")
                    return None
                return image_id, bool(match.group(2))

            def do_GET(self) -> None:
                found = self._image()
                if found is None or found[1]:
                    if found is not None:
                        self._refuse(405, "GET the image, POST its verify")
                    return
                copy = server.cache.open_verified(found[0])
                if copy is None:
                    self._refuse(404, "not cached here")
                    return
                path, _ = copy
                size = path.stat().st_size
                start = 0
                ranged = _RANGE.match(self.headers.get("Range") or "")
                if ranged:
                    start = int(ranged.group(1))
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                if not server.slots.acquire(blocking=False):
                    server.busy += 1
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    self._send(path, size, start)
                finally:
                    server.slots.release()

            def _send(self, path: Path, size: int, start: int) -> None:
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.end_headers()
                with open(path, "rb") as data:
                    data.seek(start)
                    while block := data.read(CHUNK):
                        self.wfile.write(block)
                        server.served += len(block)

            def do_POST(self) -> None:
                found = self._image()
                if found is None:
                    return
                if not found[1]:
                    self._refuse(405, "POST /cache/{id}/verify")
                    return
                ok, dropped = server.cache.reverify(found[0])
                if not ok and server.changed is not None:
                    server.changed()
                body = f'{{"ok": {str(ok).lower()}, "dropped": {str(dropped).lower()}}}'.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = _CappedServer((bind, port), Handler, max_connections)
        self.url = f"http://{bind}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.1,), name=f"image-peer-{host}", daemon=True
        )

    def start(self) -> PeerServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits for serve_forever: forever if never started
            self.httpd.shutdown()
        self.httpd.server_close()


def cache_of(driver: object, fallback: Path) -> ImageCache | Path:
    """The image cache precache fills: the driver's own when it has one (libvirt boots from
    it, so a precached image is a boot that downloads nothing), else a directory of the
    agent's (the fake driver's hosts)."""
    cache = getattr(driver, "cache", None)
    return cache if isinstance(cache, ImageCache) else fallback


TicketSource = Callable[[str, str], str]  # (image_id, sender) -> ticket


class Precacher:
    """Runs `precache` tasks for one host: the copy from the planned sources, in order."""

    def __init__(
        self,
        host: str,
        cache: ImageCache,
        origin: ImageSource,
        ticket: TicketSource,
        peers: httpx.Client | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.host, self.cache, self.origin, self.ticket = host, cache, origin, ticket
        self.progress = progress
        # plain HTTP to the rack's peer endpoints (a client may be shared by simulated hosts)
        self.peers = peers or httpx.Client(timeout=httpx.Timeout(60, connect=5))

    def _peer_chunks(self, url: str, image_id: str, ticket: str) -> Iterator[bytes]:
        with self.peers.stream("GET", f"{url}/cache/{image_id}", headers={TICKET_HEADER: ticket}) as resp:
            if resp.status_code == 404:
                raise PeerMissing(f"Image {image_id}: the peer does not hold it (404).")
            if resp.status_code != 200:
                raise PeerFailed(f"Image {image_id}: peer answered {resp.status_code}.")
            yield from resp.iter_bytes(CHUNK)

    def _reverify(self, url: str, image_id: str, ticket: str) -> tuple[bool, bool]:
        """Ask the sender to hash its copy again: (dropped, suspect). Suspect: it found its copy
        bad but kept it (instances use it) and serves it no more."""
        try:
            resp = self.peers.post(f"{url}/cache/{image_id}/verify", headers={TICKET_HEADER: ticket})
            body = resp.json() if resp.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return False, False
        dropped = bool(body.get("dropped"))
        return dropped, not dropped and body.get("ok") is False

    def _reporter(self, p: PrecachePayload, label: str) -> Callable[[int], None] | None:
        progress = self.progress
        if progress is None:
            return None

        def report(done: int) -> None:
            try:
                wanted = progress(p.job_id, p.image_id, label, done, p.attempt)
            except Exception:  # progress is informative: a lost report never stops a copy
                log.debug("precache progress of %s not reported", p.image_id, exc_info=True)
                return
            if wanted is False:
                raise CopyAborted(f"Image {p.image_id}: the job no longer wants this copy (409).")

        return report

    def run(self, p: PrecachePayload) -> TaskResult:
        started = time.time()
        try:
            meta = self.origin.metadata(p.image_id)
        except ImageCacheError as exc:
            return TaskResult(ok=True, details={"state": "error", "error": str(exc)})
        if meta.status != "active" or not meta.hash_algo or not meta.hash_value:
            why = "is not active" if meta.status != "active" else "has no os_hash_value"
            # the origin's own image is unusable: the job fails it on every host at once
            return TaskResult(
                ok=True,
                details={"state": "error", "error": f"Image {p.image_id} {why}.", "origin_failed": True},
            )
        pin_until = started + float(p.pin_seconds or 0)
        if self.cache.is_cached(meta):
            if self.cache.open_verified(meta.id) is None:  # kept for its instances, served to no one
                details = self._details("error", None, meta, started, 0, 0, [])
                details["error"] = f"Image {meta.id}: the copy here failed verification and is in use."
                details["suspect"] = True
                return TaskResult(ok=True, details=details)
            self.cache.pin(meta.id, pin_until)
            return TaskResult(ok=True, details=self._details("existing", None, meta, started, 0, 0, []))
        from_origin = from_peers = 0
        refused: list[dict[str, Any]] = []
        errors: list[str] = []
        failed_sources: list[str] = []  # the sources that failed as senders (not this host's own disk)
        origin_failed = False
        for source in p.sources if isinstance(p.sources, list) else []:
            label = str(source.get("source"))
            counted, ticket, url = None, "", str(source.get("url") or "")
            try:
                if label == "origin":
                    counted = _Counted(self.origin.chunks(meta.id), self._reporter(p, label))
                else:
                    sender = label.removeprefix("peer:")
                    ticket = self.ticket(meta.id, sender)
                    counted = _Counted(self._peer_chunks(url, meta.id, ticket), self._reporter(p, label))
                filled = self.cache.fill(meta, throttled(iter(counted), int(p.rate or 0)), label)
            except CopyAborted as exc:  # no other source either: the job moved on
                errors.append(f"{label}: {exc}")
                break
            except (ImageCacheError, httpx.HTTPError, OSError) as exc:
                errors.append(f"{label}: {exc}")
                # a raw httpx error is the API's (the ticket), not the sender's: the senders'
                # come through the cache's fill as DownloadFailed (or PeerFailed, verification)
                if isinstance(exc, (DownloadFailed, ImageVerificationError, PeerFailed)):
                    failed_sources.append(label)
                origin_failed = origin_failed or (
                    label == "origin" and isinstance(exc, ImageVerificationError)
                )
                if isinstance(exc, PeerMissing):  # a stale holder: the API requeues its row
                    peer_host = label.removeprefix("peer:")
                    refused.append({"peer": peer_host, "reason": str(exc), "dropped": True, "missing": True})
                elif counted is not None and label != "origin" and isinstance(exc, ImageVerificationError):
                    dropped, suspect = self._reverify(url, meta.id, ticket)
                    refused.append(
                        {
                            "peer": label.removeprefix("peer:"),
                            "reason": str(exc),
                            "dropped": dropped,
                            "suspect": suspect,
                        }
                    )
                continue
            finally:
                if counted is not None:
                    if label == "origin":
                        from_origin += counted.bytes
                    else:
                        from_peers += counted.bytes
            self.cache.pin(meta.id, pin_until)
            state = "cached" if filled else "existing"
            return TaskResult(
                ok=True, details=self._details(state, label, meta, started, from_origin, from_peers, refused)
            )
        details = self._details("error", None, meta, started, from_origin, from_peers, refused)
        details["error"] = "; ".join(errors) or "no source to copy from"
        details["failed_sources"] = failed_sources
        if origin_failed:  # the origin's data does not match its own hash: no retry can help
            details["origin_failed"] = True
        return TaskResult(ok=True, details=details)

    @staticmethod
    def _details(
        state: str,
        source: str | None,
        meta: ImageMeta,
        started: float,
        from_origin: int,
        from_peers: int,
        refused: list[dict[str, Any]],
    ) -> dict[str, Any]:
        return {
            "state": state,
            "source": source,
            "bytes": (meta.size or 0) if state in ("cached", "existing") else 0,
            "bytes_from_origin": from_origin,
            "bytes_from_peers": from_peers,
            "refused": refused,
            "seconds": round(time.time() - started, 3),
        }
