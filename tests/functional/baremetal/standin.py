"""A tiny conductor stand-in for tests: heartbeats over the conductor API, long-polls the fleet
for its nodes' tasks and reports results over HTTP, like the real conductor
(kumo/baremetal/conductor.py) but with machines that obey at once.

`fail` maps a task kind to an error message to report instead of success (a BMC that stops
answering, a deploy that times out)."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from kumo.agent.protocol import AGENT_TOKEN_HEADER

_POWER = {"power on": 1, "power off": 4}


class StandInConductor:
    def __init__(self, url: str, token: str, name: str = "standin") -> None:
        self.name = name
        self.http = httpx.Client(base_url=url, headers={AGENT_TOKEN_HEADER: token}, timeout=30)
        self.fail: dict[str, str] = {}
        self.hold: set[str] = set()  # task kinds left pending (a deploy in progress)
        self.seen: list[dict[str, Any]] = []  # every task received, in order
        self.power: dict[str, str] = {}  # node uuid -> the machine's power
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"conductor-{name}", daemon=True)

    def start(self) -> StandInConductor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.http.close()

    def heartbeat(self) -> list[str]:
        resp = self.http.put(f"/internal/v1/conductors/{self.name}", json={})
        resp.raise_for_status()
        nodes = resp.json()["nodes"]
        for n in nodes:
            self.power.setdefault(n["uuid"], n["power_state"] or "power off")
        return [n["uuid"] for n in nodes]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                owned = self.heartbeat()
                if not owned:
                    self._stop.wait(0.2)
                    continue
                resp = self.http.post(
                    "/internal/v1/tasks/poll",
                    json={"hosts": owned, "wait": 0.5, "busy": []},
                )
                resp.raise_for_status()
                results = [self._run(t) for t in resp.json()["tasks"] if t["kind"] not in self.hold]
                if results:
                    self.http.post("/internal/v1/tasks/results", json={"results": results}).raise_for_status()
            except httpx.HTTPError:
                self._stop.wait(0.2)

    def _run(self, task: dict[str, Any]) -> dict[str, Any]:
        self.seen.append(task)
        kind, node = task["kind"], task["host"]
        if kind in self.fail:
            return {"task_id": task["id"], "ok": False, "error": self.fail[kind]}
        if kind == "node_power":
            target = task["payload"]["target"]
            self.power[node] = "power off" if "off" in target else "power on"
        elif kind in ("spawn", "rebuild", "start", "reboot", "reboot_hard"):
            self.power[node] = "power on"
        elif kind in ("delete", "node_clean", "stop"):
            self.power[node] = "power off"
        state = self.power.get(node, "power off")
        power = _POWER[state] if task["instance_uuid"] and not kind.startswith("node_") else None
        return {"task_id": task["id"], "ok": True, "power_state": power, "details": {"power_state": state}}
