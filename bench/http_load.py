"""A light HTTP/1.1 load generator for the side-by-side benchmarks: raw keep-alive connections,
hand-written requests, responses read by Content-Length, spread over several client processes
(each an asyncio loop, uvloop when installed).

Why not httpx: at a few hundred requests per second httpx's pure-Python HTTP machinery costs
more CPU per request than the servers measured, and on a 2-core machine the client then takes
the cores the servers need. This client's cost per request is small against the servers', so
the figure is the server's.

    from bench.http_load import Request, run_load
    result = run_load("127.0.0.1", 8780, requests, concurrency=16, processes=2)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

try:
    import uvloop
except ImportError:  # optional: the stock event loop then
    uvloop = None


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def encode(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.body or self.method in ("PUT", "POST"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass
class LoadResult:
    requests: int
    seconds: float
    statuses: dict[str, int]
    latencies: list[float]  # seconds, per request

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    keep = not head.startswith(b"HTTP/1.0")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection":
            keep = value.strip().lower() != b"close"
    if not chunked:
        return status, await reader.readexactly(length) if length else b"", keep
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return status, bytes(body), keep
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _connection(
    host: str, port: int, queue: list[bytes], statuses: Counter[int], latencies: list[float]
) -> None:
    """Send requests from `queue` one after the other over one connection, reconnecting when
    the server closes it (servers without keep-alive, e.g. gunicorn's sync workers; the
    connect is then part of each request's latency, as for any client of such a server)."""
    writer: asyncio.StreamWriter | None = None
    try:
        while queue:
            wire = queue.pop()
            started = time.perf_counter()
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(wire)
            status, _, keep = await _read_response(reader)
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if not keep:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


async def _run(
    host: str, port: int, wires: list[bytes], connections: int
) -> tuple[float, dict[int, int], list[float]]:
    queue = wires[::-1]
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, queue, statuses, latencies) for _ in range(min(connections, len(wires))))
    )
    return time.perf_counter() - started, dict(statuses), latencies


def _process(
    args: tuple[str, int, list[bytes], int, Any, Any],
) -> tuple[float, float, dict[int, int], list[float]]:
    host, port, wires, connections, ready, go = args
    if uvloop is not None:
        uvloop.install()
    ready.wait()  # every process has started and imported
    go.wait()
    started = time.time()
    seconds, statuses, latencies = asyncio.run(_run(host, port, wires, connections))
    return started, started + seconds, statuses, latencies


def run_load(
    host: str, port: int, requests: list[Request], *, concurrency: int = 16, processes: int = 2
) -> LoadResult:
    """Send every request once, `concurrency` keep-alive connections in all, spread over
    `processes` client processes that start together; wall time from the first start to the
    last finish."""
    processes = max(1, min(processes, concurrency, len(requests)))
    wires = [r.encode(f"{host}:{port}") for r in requests]
    shares = [wires[i::processes] for i in range(processes)]
    per = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    # spawn, not fork: a forked client inherits the caller's threads' locks and signal handlers
    # (under pytest, after other tests, a forked pool worker could not be stopped).
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        ready, go = manager.Barrier(processes + 1), manager.Event()
        with ctx.Pool(processes) as pool:
            pending = pool.map_async(
                _process, [(host, port, shares[i], per[i], ready, go) for i in range(processes)]
            )
            ready.wait()
            go.set()
            done = pending.get()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    for _, _, s, lat in done:
        statuses.update(s)
        latencies += lat
    seconds = max(end for _, end, _, _ in done) - min(start for start, _, _, _ in done)
    return LoadResult(len(requests), seconds, {str(k): v for k, v in sorted(statuses.items())}, latencies)
