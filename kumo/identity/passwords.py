"""Password hashing with scrypt (a slow, memory-hard KDF).

Every verification costs exactly one scrypt at the cost of the stored hash, whether or not
there is a hash to check: a missing or malformed one is replaced by a dummy with the same
scheme and cost as real ones, so a refusal takes as long for a user that does not exist (or
has no password) as for a wrong password."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_N, _R, _P = 2**14, 8, 1


def _derive(password: bytes, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    """The one slow step: every hash and every verification runs it exactly once."""
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen)


def _encode(n: int, r: int, p: int, salt: bytes, digest: bytes) -> str:
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _bytes(password: str) -> bytes:
    # surrogatepass: a lone surrogate (valid in JSON) is data to hash, not an error
    return password.encode("utf-8", "surrogatepass")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    return _encode(_N, _R, _P, salt, _derive(_bytes(password), salt, _N, _R, _P, 32))


# A random salt and digest at the current cost: no password is known to match it, and checking
# one against it costs what checking a real hash costs.
_DUMMY = (_N, _R, _P, os.urandom(16), os.urandom(32))


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    try:
        _, n, r, p, salt_b64, digest_b64 = stored.split("$")
        parsed = int(n), int(r), int(p), base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return None
    return parsed if parsed[4] else None


def verify_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches `stored`; False when there is no (valid) hash, after the same
    work as a real check."""
    parsed = _parse(stored) if stored else None
    n, r, p, salt, expected = parsed or _DUMMY
    digest = _derive(_bytes(password), salt, n, r, p, len(expected))
    return hmac.compare_digest(digest, expected) and parsed is not None
