"""The `kumo` command: api, agent, up (all-in-one), db upgrade.

One executable for every process kumo runs (API, agent, conductor, scheduler, the all-in-one)
and for the operator's commands. Each process role is imported inside its own command, never at
the top: importing them all would give every process every other role's modules (measured on
the shared build machine: `import kumo.cli` 0.8 s and 39 MB; with every role 5-6 s and 135 MB,
where an agent needs 57 MB). Those role imports are the only imports in function bodies here;
everything a command shares is imported at the top."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import typer
from prometheus_client import start_http_server

from kumo.canary.cli import app as canary_app
from kumo.config import Settings, get_settings
from kumo.gc_tuning import limit_malloc_arenas, tune_gc
from kumo.inventory.cli import app as hosts_app
from kumo.logs import setup_logging
from kumo.stock.cli import app as stock_app
from kumo.store.protocol import database_store

app = typer.Typer(add_completion=False, help="kumo: a private cloud with the OpenStack API")
db_app = typer.Typer(help="Database schema")
app.add_typer(db_app, name="db")
bench_app = typer.Typer(help="Benchmarks against a kumo API")
app.add_typer(bench_app, name="bench")
app.add_typer(stock_app, name="stock")
app.add_typer(hosts_app, name="hosts")
app.add_typer(canary_app, name="canary")


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8780, help="Port to listen on"),
    workers: int = typer.Option(1, help="Worker processes (safe on PostgreSQL)"),
) -> None:
    """Serve identity, compute, image and the agents' internal API."""
    import uvicorn  # the API role (module docstring)

    setup_logging()
    uvicorn.run(
        "kumo.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http="kumo.api.transport:HeadBoundedHttpToolsProtocol",
        h11_max_incomplete_event_size=get_settings().max_request_header_bytes,
        log_level="warning",
        access_log=False,
        backlog=4096,
        # Longer than clients keep idle connections (httpx 5 s, requests' pools): the client
        # closes first, so it never sends a request on a connection the server is closing (a
        # density run lost one that way under load).
        timeout_keep_alive=30,
    )


@app.command()
def agent(
    host: str = typer.Option(..., "--host", help="This hypervisor's host name"),
    driver: str = typer.Option("fake", help="Driver: fake or libvirt"),
    api_url: str = typer.Option("http://127.0.0.1:8780", help="kumo API URL"),
    vcpus: int = typer.Option(32, help="fake driver: vCPUs to report"),
    memory_mb: int = typer.Option(131072, help="fake driver: RAM to report"),
    disk_gb: int = typer.Option(2000, help="fake driver: disk to report"),
    fake_delay: float = typer.Option(0.0, help="fake driver: seconds each guest operation takes"),
    libvirt_uri: str = typer.Option("qemu:///system", help="libvirt driver: connection URI"),
    virt_type: str = typer.Option("qemu", help="libvirt driver: qemu (TCG) or kvm"),
    host_ip: str = typer.Option("127.0.0.1", help="libvirt driver: this host's address"),
    migration_bandwidth: int = typer.Option(0, help="libvirt driver: migration cap, MiB/s (0: none)"),
    migration_max_downtime_ms: int = typer.Option(500, help="libvirt driver: live migration max downtime"),
    cpu_cores: float = typer.Option(
        None,
        help="Cores guests share, for the CPU steal signal "
        "(default: the size of --cpu-shared-set when set, else all the host's CPUs)",
    ),
    cpu_shared_set: str = typer.Option(
        None,
        help='libvirt driver: host CPUs guests are pinned to, as Nova\'s cpu_shared_set ("0-3,^2"); '
        "guests defined before keep their old pinning until redefined (migration, rebuild, resize, rescue)",
    ),
    cpu_sample_interval: float = typer.Option(10.0, help="Seconds between CPU steal samples (0: none)"),
    cpu_report_interval: float = typer.Option(60.0, help="Seconds between CPU steal reports to the API"),
    image_cache_max_age: float = typer.Option(
        86400.0, help="libvirt driver: evict cached images unused for this many seconds"
    ),
    rack: str = typer.Option(None, help="Failure-domain label: this host's rack"),
    region: str = typer.Option(None, help="Failure-domain label: this host's region"),
    network_host: bool = typer.Option(
        False, "--network-host", help="Also serve networks' DHCP and metadata (needs root, dnsmasq)"
    ),
    network_state_dir: Path = typer.Option(
        Path("/var/lib/kumo/network"), help="--network-host: where dnsmasq's files live"
    ),
) -> None:
    """Run one hypervisor's agent."""
    from kumo.agent.agent import Agent, wait_for_api  # the agent role (module docstring)
    from kumo.agent.drivers.load import load_driver
    from kumo.agent.firewall_sync import firewall_role
    from kumo.agent.netsync import network_role
    from kumo.agent.precache import cache_of

    setup_logging()
    settings = get_settings()
    wait_for_api(api_url, timeout=60)
    options: dict[str, object] = {}
    if driver == "fake":
        options = {"vcpus": vcpus, "memory_mb": memory_mb, "disk_gb": disk_gb, "delay": fake_delay}
        options["cpu_cores"] = cpu_cores
    elif driver == "libvirt":
        options = {
            "api_url": api_url,
            "token": settings.secret("agent_token"),
            "uri": libvirt_uri,
            "virt_type": virt_type,
            "host_ip": host_ip,
            "migration_bandwidth": migration_bandwidth,
            "migration_max_downtime_ms": migration_max_downtime_ms,
            "image_cache_max_age": image_cache_max_age,
            "cpu_cores": cpu_cores,
            "cpu_shared_set": cpu_shared_set,
        }
    network = None
    if network_host:
        network = network_role(api_url, settings.secret("agent_token"), network_state_dir)
    firewall = firewall_role() if driver == "libvirt" else None  # None: none usable (logged)
    compute = load_driver(driver, host, **options)
    runner = Agent(
        api_url,
        host,
        compute,
        settings.secret("agent_token"),
        image_cache=cache_of(compute, settings.state_dir / "agent-images" / host),
        peer_bind=host_ip if driver == "libvirt" else "127.0.0.1",
        ticket_key=settings.precache_ticket_key,
        peer_slots=settings.precache_peers_per_holder,
        rack=rack,
        region=region,
        network=network,
        firewall=firewall,
        unfiltered=driver == "libvirt" and firewall is None,
        cpu_sample_interval=cpu_sample_interval,
        cpu_report_interval=cpu_report_interval,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    runner.stop()
    if network is not None:
        network.metadata.stop()


@app.command()
def scheduler(
    metrics_port: int = typer.Option(0, help="Serve Prometheus metrics on 127.0.0.1 at this port (0: none)"),
) -> None:
    """Schedule pending servers in a process of its own (PostgreSQL; run `kumo api` with
    KUMO_SCHEDULER_IN_API=0). Several may run; each is woken by LISTEN/NOTIFY."""
    from kumo import wiring  # the scheduler role (module docstring): it settles and enqueues work
    from kumo.compute.workers import run_scheduler

    limit_malloc_arenas()
    setup_logging()
    rt = wiring.build_runtime(get_settings())
    wiring.install()
    tune_gc()
    if not database_store(rt.db).shared_by_processes:
        typer.echo(
            "kumo scheduler needs PostgreSQL (KUMO_DATABASE_URL); on SQLite `kumo api` schedules", err=True
        )
        raise typer.Exit(2)
    if metrics_port:
        start_http_server(metrics_port, addr="127.0.0.1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_scheduler(rt, stop)


@app.command()
def conductor(
    name: str = typer.Option(..., "--name", help="This conductor's name, unique among conductors"),
    api_url: str = typer.Option("http://127.0.0.1:8780", "--api", "--api-url", help="kumo API URL"),
    workers: int = typer.Option(32, help="tasks running at once (deploys wait on their machines)"),
    bmc_concurrency: int = typer.Option(16, help="BMC requests in flight at once"),
    heartbeat_interval: float = typer.Option(5.0, help="seconds between heartbeats"),
    power_sync_interval: float = typer.Option(60.0, help="seconds between power-state sync passes"),
) -> None:
    """Run a baremetal conductor: drives the BMCs of the nodes it owns (kumo/baremetal/conductor.py)."""
    from kumo.agent.agent import wait_for_api  # the conductor role (module docstring)
    from kumo.baremetal.conductor import Conductor

    setup_logging()
    settings = get_settings()
    wait_for_api(api_url, timeout=60)
    runner = Conductor(
        api_url,
        name,
        settings.secret("agent_token"),
        heartbeat_interval=heartbeat_interval,
        power_sync_interval=power_sync_interval,
        workers=workers,
        bmc_concurrency=bmc_concurrency,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    runner.stop()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration to KUMO_DATABASE_URL."""
    from kumo.db.migrate import upgrade  # alembic: this command's alone (module docstring)

    upgrade(get_settings().resolved_database_url)
    typer.echo("database at head")


@app.command()
def up(
    state_dir: Path = typer.Option(None, help="Where the all-in-one keeps its state (default ~/.kumo)"),
    port: int = typer.Option(8780, help="API port"),
    hosts: int = typer.Option(4, help="In-process fake hypervisors (spread over az1/az2)"),
    demo: bool = typer.Option(True, help="Boot a demo server once up"),
    exit_after_demo: bool = typer.Option(False, "--exit", help="Stop once the demo server is ACTIVE"),
    driver: str = typer.Option(
        "auto", help="First hypervisor's driver: auto (libvirt when usable, else fake), libvirt or fake"
    ),
    image_dir: Path = typer.Option(
        Path("/var/tmp/kumo-test-image"),
        envvar="KUMO_TEST_IMAGE_DIR",
        help="kumo's bootable test guest (scripts/build-test-image), for the libvirt hypervisor",
    ),
    public_network: str = typer.Option(
        "172.24.4.0/24",
        help="Subnet of the shared external network `public` made on first start; its first "
        "address is this machine's (must not overlap the machine's routes)",
    ),
    baremetal: bool = typer.Option(
        True,
        help="Baremetal nodes beside the hypervisors: Redfish (sushy-tools' emulator over libvirt "
        "machines) where real guests run, else the fake BMC driver; a conductor in this process",
    ),
    canaries: bool = typer.Option(
        None,
        help="Run the health canaries' loop (docs/canaries.md); default: the canary_loop setting",
    ),
) -> None:
    """All-in-one: migrate, bootstrap, serve the API with in-process agents and a baremetal
    conductor, make the `public` network (reachable from this machine), boot a demo server on it."""
    from kumo.allinone import run_all_in_one  # every role in one process (module docstring)

    setup_logging("WARNING")
    settings = Settings(state_dir=state_dir) if state_dir else get_settings()
    os.environ.setdefault("KUMO_STATE_DIR", str(settings.state_dir))
    if driver not in ("auto", "libvirt", "fake"):
        raise typer.BadParameter("--driver must be auto, libvirt or fake")
    try:
        run_all_in_one(
            settings,
            port=port,
            host_count=hosts,
            demo=demo,
            exit_after_demo=exit_after_demo,
            driver=driver,
            image_dir=image_dir,
            public_cidr=public_network,
            baremetal=baremetal,
            canaries=settings.canary_loop if canaries is None else canaries,
        )
    except KeyboardInterrupt:  # Ctrl-C before it was up (then it stops by its own handler)
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


@bench_app.command("density")
def bench_density(
    hypervisors: int = typer.Option(1000, help="Simulated hypervisors"),
    baremetal: int = typer.Option(0, help="Baremetal nodes to enrol through the Ironic API (fake driver)"),
    instances: int = typer.Option(5000, help="Servers to boot through the compute API"),
    database: str = typer.Option("sqlite", help="sqlite or postgresql (for the API started here)"),
    workers: int = typer.Option(1, help="API worker processes (for the API started here)"),
    scheduler_processes: int = typer.Option(
        0, help="PostgreSQL: schedule in this many `kumo scheduler` processes, not in the API workers"
    ),
    api_url: str = typer.Option(None, help="Use this running API instead of starting one"),
    admin_password: str = typer.Option(None, envvar="KUMO_ADMIN_PASSWORD", help="With --api-url"),
    api_pid: int = typer.Option(None, help="With --api-url: the API's pid, for CPU and memory"),
    database_url: str = typer.Option(None, help="With --api-url: its database, for its size"),
    concurrency: int = typer.Option(16, help="Concurrent server creates"),
    per_request: int = typer.Option(1, help="Servers per create (multi-create: min_count = max_count)"),
    probe: int = typer.Option(20, help="Lone servers created one at a time after each checkpoint"),
    vacuum: bool = typer.Option(
        True,
        help="PostgreSQL: VACUUM ANALYZE at each checkpoint, as autovacuum would",
    ),
    agent_concurrency: int = typer.Option(32, help="Concurrent registrations and heartbeats"),
    checkpoints: int = typer.Option(10, help="Report every instances/checkpoints servers"),
    list_calls: int = typer.Option(20, help="GET /servers/detail?limit=1000 calls with the full fleet"),
    heartbeat_interval: float = typer.Option(10.0, help="Each host's heartbeat interval (agent default)"),
    heartbeat_window: float = typer.Option(15.0, help="Seconds of heartbeat-only load to measure"),
    long_polls: int = typer.Option(300, help="Idle per-host long polls to hold for as long (0: skip)"),
    state_dir: Path = typer.Option(None, help="State directory for the API started here"),
    keep: bool = typer.Option(False, help="Keep the state directory and database"),
    report: Path = typer.Option(None, help="Write the JSON report here"),
    progress: bool = typer.Option(True, help="Progress bars and a summary on stderr"),
) -> None:
    """Simulated fleet over the agent protocol, then servers: scheduling latency as the fleet
    grows, server list latency, heartbeat cost, memory, database size."""
    from kumo.density.run import DensityOptions, run_density  # the benchmark (module docstring)

    options = DensityOptions(
        hypervisors=hypervisors,
        baremetal=baremetal,
        instances=instances,
        database=database,
        workers=workers,
        scheduler_processes=scheduler_processes,
        api_url=api_url,
        admin_password=admin_password,
        api_pid=api_pid,
        database_url=database_url,
        concurrency=concurrency,
        per_request=per_request,
        probe=probe,
        vacuum=vacuum,
        agent_concurrency=agent_concurrency,
        checkpoints=checkpoints,
        list_calls=list_calls,
        heartbeat_interval=heartbeat_interval,
        heartbeat_window=heartbeat_window,
        long_polls=long_polls,
        state_dir=state_dir,
        keep=keep,
        report=report,
        progress=progress,
    )
    result = run_density(options)
    if report is None:
        typer.echo(json.dumps(result, indent=2))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
