"""SIGTERM and Ctrl-C (SIGINT) stop `kumo api` and `kumo up` within a few seconds, with one
line and no traceback, even while agents hold long polls (the polls answer at once, empty)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from kumo.agent.protocol import AGENT_TOKEN_HEADER
from kumo.db.migrate import upgrade

KUMO = str(Path(sys.executable).parent / "kumo")
STOPPED_WITHIN = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(state: Path, database_url: str = "") -> dict[str, str]:
    env = {**os.environ, "KUMO_STATE_DIR": str(state), "COLUMNS": "200"}
    if database_url:
        env["KUMO_DATABASE_URL"] = database_url
    return env


def _wait_until_serving(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/identity/v3", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"kumo api did not start: {proc.communicate(timeout=10)}")


def _stop(proc: subprocess.Popen[str], signum: int) -> tuple[float, str, str]:
    """Send `signum`; (seconds until it exited, stdout, stderr). Killed, and failed, if it lasts."""
    started = time.monotonic()
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        name = signal.Signals(signum).name
        raise AssertionError(f"still running 30 s after {name}: {err[-2000:]}") from None
    return time.monotonic() - started, out, err


def _long_polls(url: str, token: str, count: int) -> tuple[list[threading.Thread], list[httpx.Response]]:
    answers: list[httpx.Response] = []

    def poll(host: str) -> None:
        answers.append(
            httpx.post(
                f"{url}/internal/v1/hosts/{host}/tasks/poll",
                json={"wait": 30},
                headers={AGENT_TOKEN_HEADER: token},
                timeout=60,
            )
        )

    threads = [threading.Thread(target=poll, args=(f"host-{i}",)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, answers


@pytest.mark.parametrize(
    ("backend", "signum"),
    [
        ("sqlite", signal.SIGTERM),
        ("sqlite", signal.SIGINT),
        pytest.param("postgresql", signal.SIGTERM, marks=pytest.mark.postgres),
    ],
    ids=["sqlite-SIGTERM", "sqlite-SIGINT", "postgresql-SIGTERM"],
)
def test_kumo_api_stops_at_once_while_agents_long_poll(
    tmp_path: Path, request: pytest.FixtureRequest, sqlite_template: Path, backend: str, signum: int
) -> None:
    state = tmp_path / "state"
    if backend == "postgresql":
        database_url = request.getfixturevalue("pg_database_url")
        upgrade(database_url)
    else:
        database_url = ""
        state.mkdir()
        shutil.copyfile(sqlite_template, state / "kumo.db")
    env = _env(state, database_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [KUMO, "api", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_until_serving(url, proc)
    token = (tmp_path / "state" / "agent_token.secret").read_text().strip()
    polls, answers = _long_polls(url, token, 3)
    time.sleep(1.0)  # the polls are waiting in the API
    seconds, _out, err = _stop(proc, signum)
    for thread in polls:
        thread.join(timeout=10)
    assert seconds < STOPPED_WITHIN, err
    assert proc.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err and "ERROR" not in err, err
    stopping = [line for line in err.splitlines() if "stopping" in line]
    assert len(stopping) == 1 and signal.Signals(signum).name in stopping[0], err
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"tasks": []})] * 3


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_kumo_up_stops_at_once_with_one_line(tmp_path: Path, signum: int) -> None:
    state = tmp_path / "state"
    args = ["up", "--driver", "fake", "--hosts", "2", "--no-demo", "--state-dir", str(state)]
    proc = subprocess.Popen(
        [KUMO, *args, "--port", str(free_port())],
        env=_env(state),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    shown = ""
    while "Press Ctrl-C to stop." not in shown:
        line = proc.stdout.readline()
        assert line, f"kumo up ended before it was up: {shown} {proc.communicate(timeout=10)}"
        shown += line
    time.sleep(1.0)  # the in-process agents are long-polling
    seconds, out, err = _stop(proc, signum)
    assert seconds < STOPPED_WITHIN, out + err
    assert proc.returncode == 0, out + err
    assert out.strip() == "stopping …" and err == "", out + err
