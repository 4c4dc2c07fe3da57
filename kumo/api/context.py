"""Who is calling: the request context every domain function receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from kumo.errors import Forbidden


@dataclass(frozen=True)
class RequestContext:
    user_id: str
    project_id: str | None
    roles: tuple[str, ...]
    request_id: str = "-"
    user_name: str = ""
    project_name: str = ""
    audit_id: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # A domain-scoped token's domain; a system-scoped token's `system`.
    domain_id: str | None = None
    system: bool = False
    # Issued for a restricted application credential (which may not create others).
    restricted: bool = False

    @property
    def is_admin(self) -> bool:
        # Legacy Keystone/Nova semantics: admin on any project is cloud admin.
        return "admin" in self.roles

    @property
    def can_read_everything(self) -> bool:
        """Keystone's `admin_required or (role:reader and system_scope:all)`."""
        return self.is_admin or (self.system and "reader" in self.roles)

    def require_reader(self) -> None:
        if not self.can_read_everything:
            raise Forbidden("Policy doesn't allow this operation to be performed.")

    @property
    def can_write(self) -> bool:
        return self.is_admin or "member" in self.roles

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("Policy doesn't allow this operation to be performed.")

    def require_writer(self) -> None:
        if not self.can_write:
            raise Forbidden("Policy doesn't allow this operation to be performed.")

    def require_project(self, policy: str) -> str:
        """The token's project, the one owner of what a create makes and a list shows. A token
        scoped to a domain or the system has none and is refused (Nova's project-scoped default
        policies), never given a shared project "" every such token would see."""
        if not self.project_id:
            raise Forbidden(f"Policy doesn't allow {policy} to be performed.")
        return self.project_id

    def owns(self, project_id: str | None) -> bool:
        return self.is_admin or (project_id is not None and project_id == self.project_id)
