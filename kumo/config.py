"""Settings, read from the environment (KUMO_*) with sane all-in-one defaults."""

from __future__ import annotations

import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KUMO_")

    state_dir: Path = Path(os.environ.get("KUMO_STATE_DIR", str(Path.home() / ".kumo")))
    database_url: str = ""
    region: str = "RegionOne"
    token_ttl_seconds: int = 3600 * 12
    # Shared secret agents present on the internal API (written to state_dir on first use).
    agent_token: str = ""
    # Fernet key for tokens (urlsafe base64, 32 bytes); written to state_dir on first use.
    token_key: str = ""
    scheduler_weigher: str = "spread"  # or "pack"
    # Each API worker runs a scheduler loop (the all-in-one default). False: API workers only
    # serve HTTP and `kumo scheduler` processes (PostgreSQL) schedule, out of the workers' GIL.
    scheduler_in_api: bool = True
    # PostgreSQL: a scheduling pass commits without waiting for its WAL flush (a database crash
    # may lose the last placements, whose servers are then placed again; the agents' task polls
    # make a placement durable before its spawn leaves: kumo.db.base.durable_before_it_leaves).
    scheduler_asynchronous_commit: bool = True
    heartbeat_timeout_seconds: float = 30.0
    # An agent's task long poll is woken when work for its host commits; the API re-reads the
    # host's pending work this often besides (a lost wake-up costs this much latency). Each
    # idle agent costs a read per period: longer for many agents on one small API.
    task_poll_recheck_seconds: float = Field(default=2.0, gt=0)
    # Image precache (kumo/compute/precache, docs/precache.md): the origin serves at most this many
    # copies at once (one seed per rack), each host holding a verified copy serves at most
    # `precache_peers_per_holder` peers at once, a (host, image) is tried at most
    # `precache_max_attempts` times; peer copies stay within a rack unless
    # `precache_cross_rack_peers`. Every transfer is capped at `precache_transfer_rate` bytes/s
    # (0: no cap; default 1 Gbit/s); a precached image is pinned against eviction for
    # `precache_pin_seconds`; a peer ticket lives `precache_ticket_ttl_seconds`, signed with
    # `precache_ticket_key` (empty: derived from the agent token). A job marks `existing` at once
    # the up hosts whose agent reported a verified copy in the last
    # `precache_cache_report_max_age_seconds` (agents report their cache each minute and after a copy).
    precache_origin_concurrency: int = Field(default=4, ge=1)
    precache_peers_per_holder: int = Field(default=2, ge=1)
    precache_max_attempts: int = Field(default=3, ge=1)
    precache_cross_rack_peers: bool = False
    precache_transfer_rate: int = Field(default=125_000_000, ge=0)
    precache_pin_seconds: int = Field(default=48 * 3600, ge=0)
    precache_ticket_ttl_seconds: int = Field(default=600, ge=1)
    precache_ticket_key: str = ""
    precache_cache_report_max_age_seconds: float = Field(default=300.0, ge=0)
    # Health canaries (kumo/canary, docs/canaries.md): consecutive failures of a host's canaries
    # before the scheduler down-weights it, and before its service is disabled (reason
    # "canary"); the loop's cadences (seconds) per zone, per host, and for retrying a suspect
    # or canary-disabled host. `canary_loop`: the API process runs the loop (as `kumo canary loop`).
    canary_suspect_after: int = Field(default=2, ge=1)
    canary_disable_after: int = Field(default=3, ge=1)
    canary_az_interval: float = Field(default=300.0, gt=0)
    canary_host_interval: float = Field(default=86400.0, gt=0)
    canary_retry_interval: float = Field(default=60.0, gt=0)
    canary_migration_interval: float = Field(default=3600.0, gt=0)
    canary_loop: bool = False
    enable_admin_password: bool = True
    # Seconds after which a server left in VERIFY_RESIZE (a resize or cold migration done) is
    # confirmed by the API's auto-confirm loop (Nova's resize_confirm_window); 0: never.
    resize_confirm_window: int = Field(default=0, ge=0)
    # A resize may land on the server's own host (Nova's allow_resize_to_same_host; on here,
    # so a one-host cloud can resize).
    allow_resize_to_same_host: bool = True
    # Nova's shelved_offload_time: seconds a shelved server keeps its guest and its host's
    # resources before it is offloaded; 0 offloads within the shelve, -1 never.
    shelved_offload_time: int = Field(default=0, ge=-1)
    # How long a serial console URL's token may wait for its (single) use (Nova's token_ttl).
    console_token_ttl_seconds: int = Field(default=600, ge=1)
    # Keystone's [security_compliance] lockout: after this many consecutive failed logins of a
    # user (anyone may try a name, so off by default as in Keystone: an operator who turns it on
    # accepts that strangers can lock a known name out), further logins are refused with
    # "The account is locked for user: <id>." for lockout_duration seconds (0: until an admin
    # updates the user with enabled=true or a new password). Failures older than the duration
    # are forgotten; with 0, those of names and ids that are no user's after a day (so that
    # made-up names cannot grow the table without bound: a name still locked after a day exists).
    lockout_failure_attempts: int | None = Field(default=None, ge=1)
    lockout_duration: int = Field(default=1800, ge=0)
    default_quota_instances: int = 10
    default_quota_cores: int = 20
    default_quota_ram: int = 51200
    # The most servers one POST /servers may ask for (max_count), whatever the quota: above
    # it the request is a 400 before anything is counted or written.
    max_servers_per_request: int = 1000
    # Set the tenant-isolation rule: a project with a filter_tenant_id aggregate lands only there.
    # Baremetal stock (kumo.stock): a project with private stock lands on no public stock.
    stock_private_exclusive: bool = True
    image_dir: Path | None = None
    # The web dashboard under /dashboard (kumo/dashboard/): a client of the public APIs, which
    # it calls at dashboard_api_url ("": this server, at the address a page's connection came
    # in on). Its session cookie is encrypted with dashboard_key (Fernet; written to state_dir
    # on first use). dashboard_cookie_secure: its Secure flag; unset (None), on unless a request
    # is plain http to a loopback address (kumo.dashboard.session.cookie_secure).
    dashboard: bool = True
    dashboard_api_url: str = ""
    dashboard_key: str = ""
    # Fernet key that encrypts the blobs of Keystone credentials (`/v3/credentials`) at rest;
    # written to state_dir on first use.
    credential_key: str = ""
    # The dashboard cookie's Secure flag; unset: on, except for plain http to a loopback address.
    dashboard_cookie_secure: bool | None = None
    # The edge (kumo/api/edge.py): a request body larger than this is refused with 413 before it
    # is read (on its Content-Length, else as it streams). Image data uploads stream to the store
    # and are exempt. The agents' internal API has its own limit, for requests that carry the
    # agent token: a fleet poll names up to 100,000 hosts and a result report carries up to 500
    # results (console output up to 100 KiB each).
    max_request_body_bytes: int = 4 * 1024 * 1024
    max_internal_body_bytes: int = 64 * 1024 * 1024
    # A (non-streamed) request body not complete this many seconds after its head is refused
    # with 408: a slow client holds its partial body in memory no longer than this.
    request_body_timeout_seconds: float = Field(default=60.0, gt=0)
    # A request line and headers larger than this are refused with 431 as they arrive
    # (kumo/api/transport.py).
    max_request_header_bytes: int = 64 * 1024
    # The rebalancer (kumo/rebalance, docs/rebalancer.md). Its loop runs audits and starts
    # actions this often (and when an audit or a plan's start commits). Signals older than
    # rebalance_signal_max_age_seconds are ignored. Drain hooks: an operator's URL (never one
    # from tenant data) POSTed a JSON body and its send time signed with HMAC-SHA256 of rebalance_hook_secret
    # (written to state_dir on first use) before and after each move; the pre-migrate answer
    # {"proceed": false} vetoes the move; rebalance_hook_timeout_seconds bounds a whole call.
    # A live migration still running after
    # rebalance_migration_timeout_seconds fails its action.
    rebalance_loop_seconds: float = Field(default=5.0, gt=0)
    rebalance_signal_max_age_seconds: float = Field(default=300.0, gt=0)
    rebalance_hook_url: str = ""
    rebalance_hook_secret: str = ""
    rebalance_hook_timeout_seconds: float = Field(default=10.0, gt=0)
    rebalance_migration_timeout_seconds: float = Field(default=900.0, gt=0)

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'kumo.db'}"

    @property
    def resolved_image_dir(self) -> Path:
        return self.image_dir or self.state_dir / "images"

    def secret(self, name: str, generate: str = "token") -> str:
        """A secret from the environment, else from state_dir (created on first use)."""
        value = getattr(self, name, "")
        if value:
            return str(value)
        path = private_dir(self.state_dir) / f"{name}.secret"
        if path.exists():
            return private_file(path).read_text().strip()
        if generate == "fernet":
            from cryptography.fernet import Fernet

            value = Fernet.generate_key().decode()
        else:
            value = secrets.token_urlsafe(32)
        # A temporary file of this call's own (mkstemp: a unique name, 0600), written whole, then
        # published under the secret's name by a hard link, which never replaces one there: of
        # processes generating at once, the first to link wins and every one returns its value.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(value)
            try:
                os.link(tmp_name, path)
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp_name)
        return path.read_text().strip()


def private_dir(path: Path) -> Path:
    """`path`, a directory of kumo's own, as one only its owner may enter (0700): created so
    (the umask can only narrow it), or tightened if it was left wider."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """`path`, an existing file of kumo's own, readable by its owner only (0600)."""
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, a file only its owner may read (0600) from its creation on: never
    readable by others, not even for the moment before a chmod."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a file left there before, wider
    with os.fdopen(fd, "w") as out:
        out.write(text)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
