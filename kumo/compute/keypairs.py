"""Key pairs: import or generate, per user (Nova's os-keypairs)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import string
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.api.context import RequestContext
from kumo.compute import params, quotas
from kumo.compute.microversion import Microversion
from kumo.compute.models import KeyPair
from kumo.errors import BadRequest, Conflict, Forbidden, NotFound, OverLimit

TYPE_VERSION = "2.2"
USER_ID_VERSION = "2.10"
PAGING_VERSION = "2.35"
# 2.92: import only (public_key required, no generation); names may also hold '@' and '.'.
IMPORT_ONLY_VERSION = "2.92"
KEY_TYPES = ("ssh", "x509")
_SAFE_CHARS = frozenset("_- " + string.digits + string.ascii_letters)
_SAFE_CHARS_292 = _SAFE_CHARS | frozenset("@.")


@dataclass(frozen=True)
class CreateRequest:
    name: str
    public_key: str | None
    type: str
    user_id: str | None
    special_names: bool = False  # 2.92: '@' and '.' allowed in the name


def parse_create(body: Any, mv: Microversion) -> CreateRequest:
    data = params.body_object(body, "keypair")
    allowed = {"name", "public_key"}
    if mv.at_least(TYPE_VERSION):
        allowed.add("type")
    if mv.at_least(USER_ID_VERSION):
        allowed.add("user_id")
    params.reject_unknown(data, allowed, "keypair")
    if "name" not in data:
        raise BadRequest("Invalid input for field/attribute keypair. 'name' is a required property")
    import_only = mv.at_least(IMPORT_ONLY_VERSION)
    if import_only and "public_key" not in data:
        raise BadRequest("Invalid input for field/attribute keypair. 'public_key' is a required property")
    public_key = data.get("public_key")
    if "public_key" in data and not isinstance(public_key, str):
        raise BadRequest(f"Invalid input for field/attribute public_key. Value: {public_key!r}.")
    key_type = data.get("type", "ssh")
    if key_type not in KEY_TYPES:
        raise BadRequest(
            f"Invalid input for field/attribute type. Value: {key_type}. {key_type!r} is not one of "
            "['ssh', 'x509']"
        )
    user_id = data.get("user_id")
    # 64: the width of user ids (and of the owner column); a longer one overflowed it on PostgreSQL.
    if user_id is not None and (not isinstance(user_id, str) or not 1 <= len(user_id) <= 64):
        raise BadRequest(f"Invalid input for field/attribute user_id. Value: {user_id!r}.")
    return CreateRequest(params.name_value(data["name"]), public_key, key_type, user_id, import_only)


def _owner(ctx: RequestContext, user_id: str | None, action: str) -> str:
    """Whose keys: your own, or (admins only) another user's."""
    if user_id and user_id != ctx.user_id:
        if not ctx.is_admin:
            raise Forbidden(f"Policy doesn't allow os_compute_api:os-keypairs:{action} to be performed.")
        return user_id
    return ctx.user_id


def _validate_name(name: str, special: bool = False) -> None:
    safe = _SAFE_CHARS_292 if special else _SAFE_CHARS
    if any(c not in safe for c in name):
        raise BadRequest("Keypair data is invalid: Keypair name contains unsafe characters")
    if not 1 <= len(name) <= 255:
        raise BadRequest(
            "Keypair data is invalid: Keypair name must be string and between 1 and 255 characters long"
        )


def fingerprint(public_key: str, key_type: str = "ssh") -> str:
    """MD5 of the key blob for ssh keys, SHA-1 of the certificate for x509, both colon hex."""
    try:
        if key_type == "x509":
            cert = x509.load_pem_x509_certificate(public_key.encode())
            return cert.fingerprint(hashes.SHA1()).hex(":")  # noqa: S303 - Nova's format
        serialization.load_ssh_public_key(public_key.strip().encode())
        blob = base64.b64decode(public_key.split()[1])
    except (ValueError, IndexError, TypeError, binascii.Error, UnicodeError, UnsupportedAlgorithm) as exc:
        raise BadRequest("Keypair data is invalid: failed to generate fingerprint") from exc
    return hashlib.md5(blob).digest().hex(":")  # noqa: S324 - Nova's format


def generate(key_type: str, user_id: str) -> tuple[str, str]:
    """(private key PEM, public key) for a generated pair."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    if key_type == "x509":
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id or "kumo")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        return private_pem, cert.public_bytes(serialization.Encoding.PEM).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private_pem, public.decode() + " Generated-by-Nova"


def create_keypair(session: Session, ctx: RequestContext, req: CreateRequest) -> tuple[KeyPair, str | None]:
    """Import `req.public_key` or generate a pair; the private key is returned once, never stored."""
    ctx.require_writer()
    user_id = _owner(ctx, req.user_id, "create")
    _validate_name(req.name, req.special_names)
    private_key = None
    if req.public_key is not None:
        public_key = req.public_key
    else:
        private_key, public_key = generate(req.type, user_id)
    key_fingerprint = fingerprint(public_key, req.type)
    quotas.lock_key_pairs(session, user_id)
    count = session.scalar(select(func.count()).select_from(KeyPair).where(KeyPair.user_id == user_id)) or 0
    # Key pairs are the user's: a token of no project (domain, system) counts against the defaults.
    limits = quotas.project_limits(session, ctx.project_id) if ctx.project_id else quotas.defaults(session)
    key_limit = limits["key_pairs"]
    if key_limit >= 0 and count + 1 > key_limit:
        raise OverLimit("Quota exceeded, too many key pairs.")
    if session.scalar(select(KeyPair.id).where(KeyPair.user_id == user_id, KeyPair.name == req.name)):
        raise Conflict(f"Key pair '{req.name}' already exists.")
    keypair = KeyPair(
        user_id=user_id, name=req.name, public_key=public_key, fingerprint=key_fingerprint, type=req.type
    )
    session.add(keypair)
    session.flush()
    return keypair, private_key


def get_keypair(session: Session, ctx: RequestContext, name: str, user_id: str | None = None) -> KeyPair:
    owner = _owner(ctx, user_id, "show")
    keypair = session.scalar(select(KeyPair).where(KeyPair.user_id == owner, KeyPair.name == name))
    if keypair is None:
        raise NotFound(f"Keypair {name} not found for user {owner}")
    return keypair


def get_keypair_for_boot(session: Session, ctx: RequestContext, name: str) -> KeyPair:
    """The caller's key pair a server create names; unknown is a 400 there."""
    keypair = session.scalar(select(KeyPair).where(KeyPair.user_id == ctx.user_id, KeyPair.name == name))
    if keypair is None:
        raise BadRequest("Invalid key_name provided.")
    return keypair


def list_keypairs(
    session: Session, ctx: RequestContext, user_id: str | None, page: params.Page | None = None
) -> list[KeyPair]:
    owner = _owner(ctx, user_id, "index")
    stmt = select(KeyPair).where(KeyPair.user_id == owner).order_by(KeyPair.name, KeyPair.id)
    if page is not None and page.marker is not None:
        marker = session.scalar(select(KeyPair).where(KeyPair.user_id == owner, KeyPair.name == page.marker))
        if marker is None:
            raise BadRequest(f"Marker {page.marker} could not be found.")
        stmt = stmt.where(KeyPair.name > marker.name)
    if page is not None and page.limit is not None:
        stmt = stmt.limit(page.limit)
    return list(session.scalars(stmt))


def delete_keypair(session: Session, ctx: RequestContext, name: str, user_id: str | None = None) -> None:
    ctx.require_writer()
    owner = _owner(ctx, user_id, "delete")
    keypair = session.scalar(select(KeyPair).where(KeyPair.user_id == owner, KeyPair.name == name))
    if keypair is None:
        raise NotFound(f"Keypair {name} not found for user {owner}")
    session.delete(keypair)
    session.flush()
