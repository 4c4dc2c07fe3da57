"""Start-up wiring: builds a process's runtime (`build_runtime`: its token provider, the
scheduler's fleet index, the image store of discarded snapshots; importing this module
registers the chooser of every Database's store), and registers the hooks that let lower
layers call up without importing the layers above them (the work queue's hooks; placement's
rules for providers in use; the metadata service's reader of an instance's ports;
networking's reader of a baremetal node's NICs). Every
process that enqueues or settles work calls `install()` once before it does; `build_runtime`
calls it, so every process holding a runtime (the API app, `kumo scheduler`, `kumo up`, the
benchmarks, the tests' clouds) has the hooks before its first request or pass; calling it again
changes nothing.

Ordering rule: work hooks run in registration order, all of them before the server's own
settling (kumo.compute.server_ops.settle), so baremetal's node hook moves a node with its
conductor's report before the node's server moves. A hook registered later (networking) runs
after baremetal's.
"""

from __future__ import annotations

from kumo.baremetal import ports as baremetal_ports
from kumo.baremetal import service as baremetal
from kumo.compute import provider_rules
from kumo.compute.fleet_index import FleetIndex
from kumo.compute.precache import service as precache
from kumo.config import Settings
from kumo.db import Database
from kumo.identity import revocation
from kumo.image.store import file_store
from kumo.metadata import backend as metadata_backend
from kumo.metadata import ports as metadata_ports
from kumo.network import firewall as network_firewall
from kumo.network import servers as network_servers
from kumo.network import sync as network_sync
from kumo.runtime import Runtime
from kumo.store import choice  # noqa: F401  (registers the chooser of every Database's store)
from kumo.tokens import Revocations, TokenProvider
from kumo.work import hooks


def build_runtime(settings: Settings, db: Database | None = None) -> Runtime:
    """A process's runtime, with the hooks installed (`install`): a process that builds one
    enqueues or settles work through it."""
    install()
    database = db or Database(settings.resolved_database_url)

    def load_revoked() -> Revocations:
        with database.read() as session:
            return revocation.load(session, settings.token_ttl_seconds)

    tokens = TokenProvider(
        settings.secret("token_key", generate="fernet"), settings.token_ttl_seconds, load_revoked
    )
    # A snapshot discarded by a server's change (kumo.image.service.discard) loses its data.
    database.image_store = file_store(settings.resolved_image_dir)
    return Runtime(
        settings=settings,
        db=database,
        tokens=tokens,
        fleet=FleetIndex(),
        agent_token=settings.secret("agent_token"),
    )


def install() -> None:
    hooks.register(baremetal.HOOKS)
    hooks.register(network_sync.HOOKS)  # a network_sync result records its applied generation
    hooks.register(network_firewall.HOOKS)  # and a firewall_sync result its host's
    hooks.register(precache.HOOKS)  # a precache result advances its job
    hooks.register_locker(precache.lock_jobs_of)  # its job's row locked before its task's
    provider_rules.register()  # placement keeps a compute host's provider
    metadata_backend.set_ports_hook(metadata_ports.ports_of)  # network_data.json reads the ports
    network_servers.set_node_macs_hook(baremetal_ports.macs_for_binding)  # a node's ports take its NICs' MACs
