"""Settings, read from the environment (KUMO_*) with sane all-in-one defaults."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

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
    enable_admin_password: bool = True
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
        path = self.state_dir / f"{name}.secret"
        if path.exists():
            return path.read_text().strip()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if generate == "fernet":
            from cryptography.fernet import Fernet

            value = Fernet.generate_key().decode()
        else:
            value = secrets.token_urlsafe(32)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(value)
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # first writer wins across processes
        except FileExistsError:
            pass
        tmp.unlink(missing_ok=True)
        return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    get_settings.cache_clear()
