"""The extension list Nova's v2.1 API still answers (`GET /extensions`): a fixed table, kept for
clients of the v2.0 era (tempest's test_extensions). It names what kumo serves of Nova's API;
kumo's own extensions (os-kumo-*) are not in it, they are described in docs/."""

from __future__ import annotations

from dataclasses import dataclass

from kumo.errors import NotFound

# What Nova answers for every entry (its v2.1 API has no per-extension dates or XML namespaces).
NAMESPACE = "http://docs.openstack.org/compute/ext/fake_xml"
UPDATED = "2014-12-03T00:00:00Z"


@dataclass(frozen=True)
class Extension:
    alias: str
    name: str
    description: str


EXTENSIONS: tuple[Extension, ...] = tuple(
    Extension(alias, name, description)
    for alias, name, description in (
        ("os-access-ips", "AccessIPs", "Access IPs support."),
        ("os-admin-actions", "AdminActions", "Enable admin-only server actions."),
        ("os-admin-password", "AdminPassword", "Admin password management support."),
        ("os-aggregates", "Aggregates", "Admin-only aggregate administration."),
        ("os-attach-interfaces", "AttachInterfaces", "Attach interface support."),
        ("os-availability-zone", "AvailabilityZone", "Availability Zone support."),
        ("os-config-drive", "ConfigDrive", "Config Drive Extension."),
        ("os-console-output", "ConsoleOutput", "Console log output support."),
        ("os-consoles", "Consoles", "Interactive Console support."),
        ("os-create-backup", "CreateBackup", "Create a backup of a server."),
        ("OS-DCF", "DiskConfig", "Disk Management Extension."),
        ("os-evacuate", "Evacuate", "Enables server evacuation."),
        ("OS-EXT-AZ", "ExtendedAvailabilityZone", "Extended Availability Zone support."),
        ("OS-EXT-IMG-SIZE", "ImageSize", "Adds image size to image listings."),
        ("OS-EXT-IPS", "ExtendedIps", "Adds type parameter to the ip list."),
        ("OS-EXT-IPS-MAC", "ExtendedIpsMac", "Adds mac address parameter to the ip list."),
        ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."),
        ("OS-EXT-STS", "ExtendedStatus", "Extended Status support."),
        ("os-extended-volumes", "ExtendedVolumes", "Extended Volumes support."),
        ("extensions", "Extensions", "Extension information."),
        ("os-flavor-access", "FlavorAccess", "Flavor access support."),
        ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support."),
        ("os-flavor-manage", "FlavorManage", "Flavor create/delete API support."),
        ("os-flavor-rxtx", "FlavorRxtx", "Support to show the rxtx status of a flavor."),
        ("flavors", "Flavors", "Flavors Extension."),
        (
            "os-hide-server-addresses",
            "HideServerAddresses",
            "Support hiding server addresses in certain states.",
        ),
        ("os-hosts", "Hosts", "Admin-only host administration."),
        ("os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."),
        ("image-metadata", "ImageMetadata", "Image Metadata API."),
        ("images", "Images", "Images Extension."),
        ("os-instance-actions", "InstanceActions", "View a log of actions and events taken on an instance."),
        ("ips", "Ips", "Server addresses."),
        ("os-keypairs", "Keypairs", "Keypair Support."),
        ("limits", "Limits", "Limits support."),
        ("os-lock-server", "LockServer", "Enable lock/unlock server actions."),
        ("os-migrate-server", "MigrateServer", "Enable migrate and live-migrate server actions."),
        ("os-migrations", "Migrations", "Provide data on migrations."),
        ("os-multinic", "Multinic", "Multiple network support."),
        ("os-multiple-create", "MultipleCreate", "Allow multiple create in the Create Server v2.1 API."),
        ("os-pause-server", "PauseServer", "Enable pause/unpause server actions."),
        ("os-quota-sets", "Quotas", "Quotas management support."),
        ("os-remote-consoles", "RemoteConsoles", "Interactive Console support."),
        ("os-rescue", "Rescue", "Instance rescue mode."),
        ("os-scheduler-hints", "SchedulerHints", "Pass arbitrary key/value pairs to the scheduler."),
        ("os-security-groups", "SecurityGroups", "Security group support."),
        (
            "os-server-diagnostics",
            "ServerDiagnostics",
            "Allow Admins to view server diagnostics through server id.",
        ),
        ("os-server-groups", "ServerGroups", "Server group support."),
        ("server-metadata", "ServerMetadata", "Server Metadata API."),
        ("os-server-tags", "ServerTags", "Server tags support."),
        ("OS-SRV-USG", "ServerUsage", "Adds launched_at and terminated_at on Servers."),
        ("servers", "Servers", "Servers."),
        ("os-services", "Services", "Services support."),
        ("os-shelve", "Shelve", "Instance shelve mode."),
        ("os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage extension."),
        ("os-suspend-server", "SuspendServer", "Enable suspend/resume server actions."),
        ("os-volumes", "Volumes", "Volumes support."),
    )
)

_BY_ALIAS = {extension.alias: extension for extension in EXTENSIONS}


def list_extensions() -> tuple[Extension, ...]:
    return EXTENSIONS


def get_extension(alias: str) -> Extension:
    """The extension named `alias` (case matters, as Nova's); 404 for any other."""
    extension = _BY_ALIAS.get(alias)
    if extension is None:
        raise NotFound("The resource could not be found.")
    return extension
