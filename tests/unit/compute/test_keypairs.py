from __future__ import annotations

import pytest

from kumo.compute import keypairs
from kumo.errors import BadRequest

# A fixed ssh-ed25519 key and its MD5 fingerprint as `ssh-keygen -l -E md5` prints it.
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example"


def test_fingerprint_is_md5_colon_hex() -> None:
    import base64
    import hashlib

    blob = base64.b64decode(KEY.split()[1])
    assert keypairs.fingerprint(KEY) == ":".join(f"{b:02x}" for b in hashlib.md5(blob).digest())  # noqa: S324
    assert len(keypairs.fingerprint(KEY).split(":")) == 16


@pytest.mark.parametrize("key", ["", "ssh-rsa", "ssh-rsa !!!notbase64", "hello world"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(BadRequest, match="failed to generate fingerprint"):
        keypairs.fingerprint(key)


def test_generated_pair_matches() -> None:
    private, public = keypairs.generate("ssh", "u1")
    assert private.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert public.startswith("ssh-rsa ") and public.endswith(" Generated-by-Nova")
    assert keypairs.fingerprint(public)


def test_generated_x509_has_sha1_fingerprint() -> None:
    _, cert = keypairs.generate("x509", "u1")
    assert len(keypairs.fingerprint(cert, "x509").split(":")) == 20
