from __future__ import annotations

import pytest

from kumo.compute import params
from kumo.errors import BadRequest


@pytest.mark.parametrize(
    ("limit", "marker", "expected"),
    [(None, None, (None, None)), ("5", "m", (5, "m")), ("0", "", (0, None)), ("5000", None, (1000, None))],
)
def test_page(limit: str | None, marker: str | None, expected: tuple[int | None, str | None]) -> None:
    page = params.page(limit, marker)
    assert (page.limit, page.marker) == expected


@pytest.mark.parametrize("limit", ["x", "-1", "1.5"])
def test_bad_limits(limit: str) -> None:
    with pytest.raises(BadRequest):
        params.page(limit, None)


@pytest.mark.parametrize(("value", "expected"), [("True", True), ("yes", True), ("0", False), (False, False)])
def test_strict_bool(value: object, expected: bool) -> None:
    assert params.strict_bool(value, "x") is expected


def test_strict_bool_rejects_unknown() -> None:
    with pytest.raises(BadRequest, match="Unrecognized value 'maybe' for x"):
        params.strict_bool("maybe", "x")


@pytest.mark.parametrize(
    ("value", "ok"), [(5, True), ("7", True), ("-1", False), (True, False), ("x", False), (2**31, False)]
)
def test_int_value(value: object, ok: bool) -> None:
    if ok:
        assert params.int_value(value, "f", 0) == int(value)  # type: ignore[call-overload]
    else:
        with pytest.raises(BadRequest):
            params.int_value(value, "f", 0)


@pytest.mark.parametrize("value", ["", " lead", "trail ", "x" * 256, 5, None])
def test_bad_names(value: object) -> None:
    with pytest.raises(BadRequest):
        params.name_value(value)


def test_uuid_like() -> None:
    assert params.is_uuid_like("2f0a2d3c-8c2b-4c53-9a07-8b8d3c6e7c11")
    assert params.is_uuid_like("2F0A2D3C8C2B4C539A078B8D3C6E7C11")
    assert not params.is_uuid_like("1") and not params.is_uuid_like("not-a-uuid")
