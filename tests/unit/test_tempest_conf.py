"""conformance/tempest.py writes tempest.conf (which holds the admin's password) readable by its
owner only, also over a file a previous run left readable by others."""

from __future__ import annotations

import stat
from pathlib import Path

from conformance import tempest


def test_tempest_conf_is_private(tmp_path: Path) -> None:
    conf = tmp_path / "tempest.conf"
    conf.write_text("old")
    conf.chmod(0o644)
    tempest.write_private(conf, "[auth]\nadmin_password = s3cret\n")
    assert conf.read_text() == "[auth]\nadmin_password = s3cret\n"
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    fresh = tmp_path / "new.conf"
    tempest.write_private(fresh, "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
