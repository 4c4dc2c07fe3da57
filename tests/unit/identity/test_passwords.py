"""Password hashing: every verification costs one scrypt, whether or not there is a hash."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.identity import passwords


@pytest.fixture
def costs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The scrypt cost (N) of every derivation."""
    seen: list[int] = []
    derive = passwords._derive

    def counting(password: bytes, salt: bytes, n: int, *args: Any) -> bytes:
        seen.append(n)
        return derive(password, salt, n, *args)

    monkeypatch.setattr(passwords, "_derive", counting)
    return seen


def test_a_hash_verifies_its_password_only() -> None:
    stored = passwords.hash_password("s3cret")
    assert passwords.verify_password("s3cret", stored)
    assert not passwords.verify_password("S3cret", stored)


@pytest.mark.parametrize("stored", [None, "", "not-a-hash", "scrypt$16384$8$1$AAAA$", "scrypt$x$8$1$AA$AA"])
def test_no_usable_hash_refuses_after_the_same_work(stored: str | None, costs: list[int]) -> None:
    real = passwords.hash_password("s3cret")
    costs.clear()
    assert not passwords.verify_password("wrong", real)
    assert not passwords.verify_password("s3cret", stored)
    assert costs[0] == costs[1] == 2**14  # a dummy at the cost of a real hash


def test_a_lone_surrogate_is_a_password_like_any_other() -> None:
    stored = passwords.hash_password("\ud800x")
    assert passwords.verify_password("\ud800x", stored)
    assert not passwords.verify_password("\udc00x", stored)
