"""Nova's validators of known flavor extra specs (microversion 2.86), as data.

From 2.86 Nova checks every extra spec written to a flavor against its table of known specs:
a spec it knows must have a value of the right kind (a boolean-like word, an integer within
bounds, one of a list, or matching a pattern); a spec of a namespace it knows (`hw:`, `quota:`,
`os:`…) that it does not know is refused; specs without a namespace or of another namespace
are any string. The `resources{group}:` and `trait{group}:` namespaces are kumo's own rule at
every version (kumo/compute/extra_specs.py: its scheduler reads them). The table below is Nova's
(the names and values its extra-spec reference documents); `check` is kumo's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kumo.errors import BadRequest
from kumo.validation import int_text

VERSION = "2.86"

STR, INT, BOOL = "str", "int", "bool"
_TRUE_FALSE = frozenset({"1", "t", "true", "on", "y", "yes", "0", "f", "false", "off", "n", "no"})


@dataclass(frozen=True)
class Rule:
    """A known spec: its name (a regular expression, matched whole) and what its value is."""

    name: str
    kind: str
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.name))


RULES: tuple[Rule, ...] = (
    # capabilities: any string, for the names of a host state's fields (and sub-keys)
    Rule(
        r"capabilities:(?:id|uuid|service_id|host|vcpus|memory_mb|local_gb|vcpus_used|memory_mb_used|local_gb_used|hypervisor_type|hypervisor_version|hypervisor_hostname|free_ram_mb|free_disk_gb|current_workload|running_vms|disk_available_least|host_ip|mapped|cpu_allocation_ratio|ram_allocation_ratio|disk_allocation_ratio|total_usable_ram_mb|total_usable_disk_gb|disk_mb_used|free_disk_mb|vcpus_total|num_instances|num_io_ops|failed_builds|aggregates|cell_uuid|updated)",
        STR,
    ),
    Rule(
        r"capabilities:(?:cpu_info|metrics|stats|numa_topology|supported_hv_specs|pci_device_pools|nodename|pci_stats|supported_instances|limits|instances)(?::\w+)*",
        STR,
    ),
    Rule("accel:device_profile", STR),
    Rule(r"aggregate_instance_extra_specs:(?:.+)", STR),
    Rule("hw:cpu_realtime", BOOL),
    Rule("hw:cpu_realtime_mask", STR, pattern=r"(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    Rule("hw:hide_hypervisor_id", BOOL),
    Rule("hw:cpu_policy", STR, enum=("dedicated", "shared", "mixed")),
    Rule("hw:cpu_thread_policy", STR, enum=("prefer", "isolate", "require")),
    Rule("hw:emulator_threads_policy", STR, enum=("isolate", "share")),
    Rule("hw:cpu_dedicated_mask", STR, pattern=r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    Rule("hw:mem_page_size", STR, pattern=r"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)"),
    Rule("hw:locked_memory", BOOL),
    Rule("hw:numa_nodes", INT, minimum=1),
    Rule(r"hw:numa_cpus.(?:\d+)", STR, pattern=r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
    Rule(r"hw:numa_mem.(?:\d+)", INT, minimum=1),
    Rule("hw:pci_numa_affinity_policy", STR, enum=("required", "preferred", "legacy", "socket")),
    Rule("hw:cpu_sockets", INT, minimum=1),
    Rule("hw:cpu_cores", INT, minimum=1),
    Rule("hw:cpu_threads", INT, minimum=1),
    Rule("hw:cpu_max_sockets", INT, minimum=1),
    Rule("hw:cpu_max_cores", INT, minimum=1),
    Rule("hw:cpu_max_threads", INT, minimum=1),
    Rule("hw:boot_menu", BOOL),
    Rule("hw:vif_multiqueue_enabled", BOOL),
    Rule("hw:mem_encryption", BOOL),
    Rule("hw:mem_encryption_model", STR, enum=("amd-sev", "amd-sev-es", "amd-sev-snp")),
    # Nova's `([a-zA-Z0-9_]+(,)?)+`, written without nested repetition (the same strings; the
    # nested form backtracks exponentially on a long value that fails at its end).
    Rule("hw:pmem", STR, pattern=r"[a-zA-Z0-9_]+(?:,[a-zA-Z0-9_]+)*,?"),
    Rule("hw:pmu", BOOL),
    Rule("hw:serial_port_count", INT, minimum=0),
    Rule("hw:tpm_model", STR, enum=("tpm-tis", "tpm-crb")),
    Rule("hw:tpm_version", STR, enum=("1.2", "2.0")),
    Rule("hw:tpm_secret_security", STR, enum=("user", "host", "deployment")),
    Rule("hw:watchdog_action", STR, enum=("none", "pause", "poweroff", "reset", "disabled")),
    Rule("hw:viommu_model", STR, enum=("intel", "smmuv3", "virtio", "auto")),
    Rule("hw:virtio_packed_ring", BOOL),
    Rule("hw:sound_model", STR, enum=("sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio")),
    Rule("hw:usb_model", STR, enum=("none", "nec-xhci", "qemu-xhci")),
    Rule("hw:redirected_usb_ports", INT, minimum=0, maximum=15),
    Rule("hw:ephemeral_encryption", BOOL),
    Rule("hw:ephemeral_encryption_format", STR, enum=("plain", "luks", "luksv2")),
    Rule("hw_rng:allowed", BOOL),
    Rule("hw_rng:rate_bytes", INT, minimum=0),
    Rule("hw_rng:rate_period", INT, minimum=0),
    Rule("hw_video:ram_max_mb", INT, minimum=0),
    Rule("hide_hypervisor_id", BOOL),
    Rule("group_policy", STR, enum=("isolate", "none")),
    Rule("os:secure_boot", STR, enum=("disabled", "required")),
    Rule("pci_passthrough:alias", STR, pattern=r"[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*"),
    Rule("quota:cpu_limit", INT, minimum=0),
    Rule("quota:cpu_reservation", INT),
    Rule("quota:cpu_shares_level", STR, enum=("custom", "high", "normal", "low")),
    Rule("quota:cpu_shares_share", INT, minimum=0),
    Rule("quota:memory_limit", INT, minimum=0),
    Rule("quota:memory_reservation", INT),
    Rule("quota:memory_shares_level", STR, enum=("custom", "high", "normal", "low")),
    Rule("quota:memory_shares_share", INT, minimum=0),
    Rule("quota:disk_io_limit", INT, minimum=0),
    Rule("quota:disk_io_reservation", INT),
    Rule("quota:disk_io_shares_level", STR, enum=("custom", "high", "normal", "low")),
    Rule("quota:disk_io_shares_share", INT, minimum=0),
    Rule("quota:vif_limit", INT, minimum=0),
    Rule("quota:vif_reservation", INT),
    Rule("quota:vif_shares_level", STR, enum=("custom", "high", "normal", "low")),
    Rule("quota:vif_shares_share", INT, minimum=0),
    Rule("quota:cpu_shares", INT, minimum=0),
    Rule("quota:cpu_period", INT, minimum=0),
    Rule("quota:cpu_quota", INT),
    Rule("quota:disk_read_bytes_sec", INT, minimum=0),
    Rule("quota:disk_read_iops_sec", INT, minimum=0),
    Rule("quota:disk_write_bytes_sec", INT, minimum=0),
    Rule("quota:disk_write_iops_sec", INT, minimum=0),
    Rule("quota:disk_total_bytes_sec", INT, minimum=0),
    Rule("quota:disk_total_iops_sec", INT, minimum=0),
    Rule("quota:vif_inbound_average", INT, minimum=0),
    Rule("quota:vif_inbound_peak", INT, minimum=0),
    Rule("quota:vif_inbound_burst", INT, minimum=0),
    Rule("quota:vif_outbound_average", INT, minimum=0),
    Rule("quota:vif_outbound_peak", INT, minimum=0),
    Rule("quota:vif_outbound_burst", INT, minimum=0),
    Rule("vmware:hw_version", STR),
    Rule("vmware:storage_policy", STR),
)
_BY_NAME = {rule.name: rule for rule in RULES}
# Namespaces Nova knows: an unknown spec in one of them is refused.
KNOWN_NAMESPACES = frozenset(rule.name.split(":", 1)[0] for rule in RULES if ":" in rule.name)
_GROUPED_NAMESPACES = re.compile(r"(?:resources|trait)[a-zA-Z0-9_-]{0,64}")


def _failed(message: str) -> BadRequest:
    return BadRequest(f"Validation failed; {message}")


def find(name: str) -> Rule | None:
    rule = _BY_NAME.get(name)
    if rule is not None:
        return rule
    return next((r for r in RULES if r.regex.fullmatch(name)), None)


def check(name: str, value: str) -> None:
    """2.86: `name=value` as Nova's validators judge it (a 400 naming the problem); the
    resources and trait namespaces are left to kumo/compute/extra_specs.py."""
    rule = find(name)
    if rule is None:
        namespace = name.split(":", 1)[0] if ":" in name else None
        if namespace is None or namespace not in KNOWN_NAMESPACES or _GROUPED_NAMESPACES.fullmatch(namespace):
            return
        raise _failed(f"extra spec '{name}' does not appear to be a valid extra spec.")
    if rule.kind == BOOL:
        if value.strip().lower() not in _TRUE_FALSE:
            raise _failed(f"'{value}' is not a valid boolean-like value.")
    elif rule.kind == INT:
        number = int_text(value)
        if number is None:
            raise _failed(f"'{value}' is not a valid integer value.")
        if rule.maximum is not None and number > rule.maximum:
            raise _failed(f"'{value}' is greater than the max value of '{rule.maximum}'.")
        if rule.minimum is not None and number < rule.minimum:
            raise _failed(f"'{value}' is less than the min value of '{rule.minimum}'.")
    elif rule.pattern is not None:
        if not re.fullmatch(rule.pattern, value):
            raise _failed(f"'{value}' is not of the format '{rule.pattern}'.")
    elif rule.enum and value not in rule.enum:
        raise _failed(f"'{value}' is not one of: {', '.join(rule.enum)}.")
