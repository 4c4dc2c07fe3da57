"""The dashboard's session: one HTTP-only, SameSite=Lax cookie holding the session encrypted and
authenticated with a Fernet key of the cloud's (`dashboard_key`, in the state directory), so
any API worker reads it and nothing server-side needs sharing. A browser (or its scripts) can
neither read the Keystone token inside nor change any field.

Every session, signed in or not, carries a random CSRF token; every form posts it back (field
`csrf_token`, or header `X-CSRF-Token` for scripted uploads) and a POST whose token does not match
its session's is refused (403) before anything is called. Signing out revokes the Keystone token,
so a copy of the cookie is worthless afterwards."""

from __future__ import annotations

import hmac
import ipaddress
import json
import secrets
from dataclasses import asdict, dataclass, field

from cryptography.fernet import Fernet, InvalidToken

COOKIE = "kumo_dashboard"
PATH = "/dashboard"
# Dashboard pages may not be framed by any site (clickjacking).
PAGE_HEADERS = {"Content-Security-Policy": "frame-ancestors 'none'"}


def cookie_secure(setting: bool | None, scheme: str, server_host: str | None) -> bool:
    """Whether the session cookie is marked Secure: as `dashboard_cookie_secure` says, else
    (None: automatic) always, but for a plain-http request that reached a loopback address (a
    developer's or `kumo up`'s http://127.0.0.1, where a browser would not send a Secure
    cookie back). Behind a TLS proxy the request is http to kumo's address: Secure, unless the
    proxy connects over loopback (then set dashboard_cookie_secure=true)."""
    if setting is not None:
        return setting
    if scheme == "https":
        return True
    return not _loopback(server_host)


def _loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    token: str = ""
    user_id: str = ""
    user_name: str = ""
    domain: str = "default"
    project_id: str = ""
    project_name: str = ""
    roles: list[str] = field(default_factory=list)
    flash: str = ""  # shown once on the next page ("error:" first for a refusal)

    @property
    def signed_in(self) -> bool:
        return bool(self.token)

    @property
    def is_admin(self) -> bool:
        """Shows the operator pages; the API decides what an admin call may do all the same."""
        return "admin" in self.roles

    def csrf_matches(self, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), (sent or "").encode())


class Sessions:
    """Seals a Session into the cookie's value and opens it again (None: absent, forged,
    or older than `max_age` seconds)."""

    def __init__(self, key: str, max_age: int) -> None:
        self._fernet = Fernet(key.encode())
        self.max_age = max_age

    def seal(self, session: Session) -> str:
        return self._fernet.encrypt(json.dumps(asdict(session)).encode()).decode()

    def open(self, value: str | None) -> Session | None:
        if not value:
            return None
        try:
            data = json.loads(self._fernet.decrypt(value.encode(), ttl=self.max_age))
            return Session(**data)
        except (InvalidToken, ValueError, TypeError):
            return None
