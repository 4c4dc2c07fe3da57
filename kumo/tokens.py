"""Signed, expiring tokens (Fernet: AES + HMAC). Verifying one reads no database: the roles
travel inside the token, and revocations are a small in-memory set refreshed periodically.

Below every service's API layer (kumo.api.deps verifies each request's token through the
runtime's provider); identity issues tokens and loads the revocations
(kumo.identity.revocation.load)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from kumo.errors import NotFound, Unauthorized


@dataclass(frozen=True)
class Revocations:
    audit_ids: frozenset[str] = frozenset()
    users: dict[str, dt.datetime] = field(default_factory=dict)
    projects: dict[str, dt.datetime] = field(default_factory=dict)
    user_projects: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)
    app_creds: dict[str, dt.datetime] = field(default_factory=dict)

    def revokes(
        self,
        audit_id: str,
        user_id: str,
        project_id: str | None,
        issued_at: dt.datetime,
        app_cred_id: str | None = None,
    ) -> bool:
        """`project_id` is the token's scope target: a project's id or a domain's."""
        if audit_id in self.audit_ids:
            return True
        cutoffs = [self.users.get(user_id)]
        if app_cred_id is not None:
            cutoffs.append(self.app_creds.get(app_cred_id))
        if project_id is not None:
            cutoffs += [self.projects.get(project_id), self.user_projects.get((user_id, project_id))]
        return any(cut is not None and issued_at <= cut for cut in cutoffs)


@dataclass(frozen=True)
class TokenData:
    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: tuple[str, ...]
    role_ids: tuple[str, ...]
    issued_at: dt.datetime
    expires_at: dt.datetime
    audit_id: str
    methods: tuple[str, ...] = ("password",)
    # Where the user and the project live: (id, name) of their domains.
    user_domain: tuple[str, str] = ("default", "Default")
    project_domain: tuple[str, str] | None = None
    # Domain scope: (id, name); system scope: True. At most one of project, domain, system.
    domain: tuple[str, str] | None = None
    system: bool = False
    # Issued for an application credential: (id, name, restricted).
    app_cred: tuple[str, str, bool] | None = None

    @property
    def scope_id(self) -> str | None:
        """The id revocations by target match: the project's, or the domain's."""
        return self.project_id or (self.domain[0] if self.domain else None)


def _ts(value: dt.datetime) -> float:
    return value.replace(tzinfo=dt.UTC).timestamp()


def _from_ts(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)


class TokenProvider:
    def __init__(
        self,
        key: str,
        ttl_seconds: int,
        load_revoked: Callable[[], Revocations] | None = None,
        refresh_seconds: float = 2.0,
    ) -> None:
        self._fernet = Fernet(key.encode())
        self._pseudonym_key = hashlib.sha256(b"kumo pseudonym\0" + key.encode()).digest()
        self.ttl_seconds = ttl_seconds
        self._load_revoked = load_revoked
        self._refresh_seconds = refresh_seconds
        self._revoked = Revocations()
        self._local_audit_ids: set[str] = set()
        self._loaded_at = -math.inf  # not 0: the monotonic clock may be younger than the interval
        self._lock = threading.Lock()
        # Decrypting (AES + HMAC, then JSON) was about 5 % of the API's CPU in a boot storm: keep
        # recent tokens' data (immutable). Expiry and revocation are still checked on every request.
        self._payload = functools.lru_cache(maxsize=8192)(self._decrypt)

    def issue(
        self,
        *,
        user_id: str,
        user_name: str,
        project_id: str | None,
        project_name: str | None,
        roles: list[tuple[str, str]],
        expires_at: dt.datetime | None = None,
        audit_id: str | None = None,
        issued_at: dt.datetime | None = None,
        methods: tuple[str, ...] = ("password",),
        user_domain: tuple[str, str] = ("default", "Default"),
        project_domain: tuple[str, str] | None = None,
        domain: tuple[str, str] | None = None,
        system: bool = False,
        app_cred: tuple[str, str, bool] | None = None,
    ) -> tuple[str, TokenData]:
        """A new token; a rescoped one passes its parent's `expires_at` and `issued_at`, so that
        whatever revokes the parent (a revocation event by issue time) revokes it too."""
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        expires = expires_at or now + dt.timedelta(seconds=self.ttl_seconds)
        data = TokenData(
            user_id=user_id,
            user_name=user_name,
            project_id=project_id,
            project_name=project_name,
            roles=tuple(name for _, name in roles),
            role_ids=tuple(rid for rid, _ in roles),
            issued_at=issued_at or now,
            expires_at=expires,
            audit_id=audit_id or secrets.token_urlsafe(16),
            methods=methods,
            user_domain=user_domain,
            project_domain=project_domain,
            domain=domain,
            system=system,
            app_cred=app_cred,
        )
        payload: dict[str, Any] = {
            "u": data.user_id,
            "un": data.user_name,
            "p": data.project_id,
            "pn": data.project_name,
            "r": list(data.roles),
            "ri": list(data.role_ids),
            "i": _ts(data.issued_at),
            "e": _ts(data.expires_at),
            "a": data.audit_id,
            "m": list(data.methods),
            "ud": list(data.user_domain),
        }
        if data.project_domain is not None:
            payload["pd"] = list(data.project_domain)
        if data.domain is not None:
            payload["d"] = list(data.domain)
        if data.system:
            payload["s"] = True
        if data.app_cred is not None:
            payload["ac"] = list(data.app_cred)
        token = self._fernet.encrypt(json.dumps(payload, separators=(",", ":")).encode()).decode()
        return token, data

    def verify(self, token: str, *, subject: bool = False) -> TokenData:
        """Validate a token; `subject=True` raises NotFound (Keystone's answer for a bad
        X-Subject-Token) instead of Unauthorized."""
        error: type[Exception] = NotFound if subject else Unauthorized
        try:
            expires, data = self._payload(token)
        except (InvalidToken, ValueError, TypeError, KeyError, IndexError):
            raise error("The request you have made requires authentication.") from None
        if expires < time.time():
            raise error("The token has expired.")
        app_cred = data.app_cred[0] if data.app_cred else None
        if data.audit_id in self._local_audit_ids or self._revocations().revokes(
            data.audit_id, data.user_id, data.scope_id, data.issued_at, app_cred
        ):
            raise error("The token has been revoked.")
        return data

    def pseudonym(self, value: str) -> str:
        """An id-shaped stand-in for `value`: the hex of a version-4 UUID, as a user id is (its
        version and variant digits included, so that its shape does not tell it from one), the
        same in every worker and after restarts, and not computable without the token key."""
        data = value.encode("utf-8", "surrogatepass")
        digest = hmac.new(self._pseudonym_key, data, hashlib.sha256).digest()
        return uuid.UUID(bytes=digest[:16], version=4).hex

    def _decrypt(self, token: str) -> tuple[float, TokenData]:
        """The token's expiry (a timestamp) and its data, built once per cached token."""
        raw = dict(json.loads(self._fernet.decrypt(token.encode())))
        domain, app_cred, project_domain = raw.get("d"), raw.get("ac"), raw.get("pd")
        data = TokenData(
            user_id=raw["u"],
            user_name=raw["un"],
            project_id=raw["p"],
            project_name=raw["pn"],
            roles=tuple(raw["r"]),
            role_ids=tuple(raw["ri"]),
            issued_at=_from_ts(raw["i"]),
            expires_at=_from_ts(raw["e"]),
            audit_id=raw["a"],
            methods=tuple(raw.get("m", ("password",))),
            user_domain=tuple(raw.get("ud", ("default", "Default"))),  # type: ignore[arg-type]
            project_domain=tuple(project_domain) if project_domain else None,  # type: ignore[arg-type]
            domain=tuple(domain) if domain else None,  # type: ignore[arg-type]
            system=bool(raw.get("s", False)),
            app_cred=tuple(app_cred) if app_cred else None,  # type: ignore[arg-type]
        )
        return float(raw["e"]), data

    def mark_revoked(self, audit_id: str) -> None:
        with self._lock:
            self._local_audit_ids.add(audit_id)

    def refresh_soon(self) -> None:
        """This worker just wrote a revocation: read them again on the next verification."""
        self._loaded_at = -math.inf  # not 0: the monotonic clock may be younger than the interval

    def _revocations(self) -> Revocations:
        if self._load_revoked is None:
            return self._revoked
        now = time.monotonic()
        if now - self._loaded_at > self._refresh_seconds:
            with self._lock:
                if now - self._loaded_at > self._refresh_seconds:
                    self._revoked = self._load_revoked()
                    self._loaded_at = time.monotonic()
        return self._revoked
