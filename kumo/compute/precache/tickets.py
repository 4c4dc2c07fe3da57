"""Short-lived tickets that authorise one peer transfer: the API mints them, the sending agent
checks them. A ticket is `v1.<expiry>.<receiver>.<signature>`, the signature an HMAC-SHA256 over
(image, sender, receiver, expiry) with the ticket key. Pure: the caller gives the time.

The key: the setting `precache_ticket_key`, else one derived from the agent token (every agent
holds that already), so a ticket is worthless to anyone who is not an agent or the API."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "v1"


def derive_key(agent_token: str) -> bytes:
    return hmac.new(agent_token.encode(), b"kumo-precache-ticket", hashlib.sha256).digest()


def _signature(key: bytes, image_id: str, sender: str, receiver: str, expiry: int) -> str:
    message = "\n".join((image_id, sender, receiver, str(expiry))).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mint(key: bytes, image_id: str, sender: str, receiver: str, expiry: int) -> str:
    if "." in receiver:
        receiver_part = receiver.encode().hex()
        return f"{PREFIX}x.{expiry}.{receiver_part}.{_signature(key, image_id, sender, receiver, expiry)}"
    return f"{PREFIX}.{expiry}.{receiver}.{_signature(key, image_id, sender, receiver, expiry)}"


def check(key: bytes, ticket: str, image_id: str, sender: str, now: float) -> str | None:
    """The receiver the ticket names, when it is valid for `image_id` from `sender` at `now`;
    None otherwise (forged, for another image or sender, or expired)."""
    parts = ticket.split(".")
    if len(parts) != 4 or parts[0] not in (PREFIX, f"{PREFIX}x"):
        return None
    if not (parts[1].isascii() and parts[1].isdigit()):  # "١٢" is a str.isdigit() too
        return None
    expiry = int(parts[1])
    receiver = parts[2]
    if parts[0] == f"{PREFIX}x":
        try:
            receiver = bytes.fromhex(receiver).decode()
        except ValueError:
            return None
    if expiry < now:
        return None
    expected = _signature(key, image_id, sender, receiver, expiry)
    signature = parts[3]
    if not signature.isascii():  # compare_digest refuses non-ASCII str
        return None
    return receiver if hmac.compare_digest(expected, signature) else None
