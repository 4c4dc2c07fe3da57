"""An in-process kumo for benchmarks: the real API (uvicorn in a thread, SQLite by default or
any database URL) and real agents (`kumo.agent.agent.Agent`, fake driver) talking to it over
HTTP on loopback, as tests/conftest.py's `start_cloud` and `Fleet` do (bench/ does not import
tests/).

The process-wide settings the API's domain code reads (`kumo.config.get_settings()`) are set
to the cloud's own for as long as it runs (`Cloud.stop` puts them back): heartbeat timeout,
precache policy, transfer rate.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from kumo import promtext
from kumo.agent.agent import Agent
from kumo.agent.drivers.fake import FakeDriver
from kumo.config import Settings, get_settings
from kumo.deploy import init_cloud
from kumo.server import ThreadedServer
from kumo.wiring import build_runtime


class Cloud:
    """The API in this process, on a fresh database (`database_url` empty: SQLite in `state`)."""

    def __init__(self, state: Path, database_url: str = "", **settings: Any) -> None:
        self.password = secrets.token_urlsafe(12)
        self.settings = Settings(state_dir=state, database_url=database_url, **settings)
        process = get_settings()
        self._saved = {name: getattr(process, name) for name in settings}
        for name, value in settings.items():  # what the domain code reads, while this cloud runs
            setattr(process, name, value)
        try:
            self.db = init_cloud(self.settings, self.password)
            self.rt = build_runtime(self.settings, self.db)
            self.server = ThreadedServer(self.rt).start()
        except BaseException:
            self._restore()
            raise
        self.url = self.server.url
        self.agents: list[Agent] = []

    def token(self) -> str:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "admin", "domain": {"id": "default"}, "password": self.password}
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
        resp = httpx.post(f"{self.url}/identity/v3/auth/tokens", json=body, timeout=30)
        resp.raise_for_status()
        return resp.headers["X-Subject-Token"]

    def client(self, microversion: str | None = None, timeout: float = 120) -> httpx.Client:
        headers = {"X-Auth-Token": self.token()}
        if microversion:
            headers["OpenStack-API-Version"] = f"compute {microversion}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def add_agent(
        self, name: str, rack: str | None, cache: Path, heartbeat_interval: float = 30.0, **kw: Any
    ) -> Agent:
        """A fake-driver agent with its own image cache directory and peer endpoint, started
        (registered, polling). Only what precache needs runs often: one guest worker, no CPU
        sampling, a power sync once an hour."""
        agent = Agent(
            self.url,
            name,
            FakeDriver(name),
            self.rt.agent_token,
            heartbeat_interval=heartbeat_interval,
            power_sync_interval=3600.0,
            workers=1,
            poll_wait=20.0,
            rack=rack,
            cpu_sample_interval=0.0,
            image_cache=cache,
            **kw,
        )
        self.agents.append(agent.start())
        return agent

    def stop_agents(self, agents: list[Agent] | None = None) -> None:
        """Stop agents at once: every stop flag first (their loops end within ~0.5 s), then each
        is joined (a long poll in flight is abandoned, as Agent.stop says)."""
        chosen = self.agents if agents is None else agents
        for agent in chosen:
            agent.stop_event.set()
        time.sleep(0.6)
        for agent in chosen:
            agent.stop()
        self.agents = [a for a in self.agents if a not in chosen]

    def stop(self) -> None:
        self.rt.waker.stop()  # long polls answer now
        self.stop_agents()
        self.server.stop()
        self.db.dispose()
        self._restore()

    def _restore(self) -> None:
        process = get_settings()
        for name, value in self._saved.items():
            setattr(process, name, value)


def upload_image(c: httpx.Client, data: bytes, name: str = "bench-image") -> str:
    """A public raw image with `data`, through Glance (`/image/v2`)."""
    body = {"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "public"}
    created = c.post("/image/v2/images", json=body)
    created.raise_for_status()
    image_id = str(created.json()["id"])
    put = c.put(
        f"/image/v2/images/{image_id}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    put.raise_for_status()
    return image_id


def counter(url: str, name: str) -> float:
    """A counter's value (summed over its labels) on the API's /metrics page."""
    return promtext.total(httpx.get(f"{url}/metrics", timeout=30).text, name)


class Watch:
    """The process's thread and open-file counts, sampled every `interval` s until stopped
    (their maxima: what 200 agents in one process cost)."""

    def __init__(self, interval: float = 1.0) -> None:
        self.max_threads = self.max_fds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        while True:
            self.sample()
            if self._stop.wait(interval):
                return

    def sample(self) -> None:
        self.max_threads = max(self.max_threads, threading.active_count())
        self.max_fds = max(self.max_fds, len(list(Path("/proc/self/fd").iterdir())))

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
