"""Token provider pieces that need no database."""

from __future__ import annotations

import re

from cryptography.fernet import Fernet

from kumo.tokens import TokenProvider

UUID4_HEX = re.compile(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")


def test_a_pseudonym_is_shaped_like_a_user_id_and_stable() -> None:
    """A user id is uuid4().hex: a stand-in without its version and variant digits would tell
    a locked name that does not exist from one that does."""
    key = Fernet.generate_key().decode()
    provider = TokenProvider(key, 3600)
    names = [f"default\0nobody-{i}" for i in range(64)]
    stand_ins = [provider.pseudonym(name) for name in names]
    assert all(UUID4_HEX.fullmatch(s) for s in stand_ins), stand_ins
    assert len(set(stand_ins)) == len(names)
    assert [TokenProvider(key, 60).pseudonym(name) for name in names] == stand_ins  # any worker
    assert TokenProvider(Fernet.generate_key().decode(), 3600).pseudonym(names[0]) != stand_ins[0]
