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


@pytest.mark.parametrize(("value", "expected"), [(1, 1), ("7", 7), ("0007", 7), (1000, 1000)])
def test_count_value_accepts_ints_and_digit_strings(value: object, expected: int) -> None:
    assert params.count_value(value, "min_count", 1000) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1e20, "is not of type 'integer', 'string'"),
        (1.5, "is not of type 'integer', 'string'"),
        (1.0, "is not of type 'integer', 'string'"),
        ("1e3", "is not of type 'integer', 'string'"),
        ("\u00b2", "is not of type 'integer', 'string'"),
        # Nova's pattern ^[0-9]*$, not int()'s rules (which raised ValueError for the first two)
        ("--5", "is not of type 'integer', 'string'"),
        ("1" * 5000, r"1{40}\.\.\. is greater than the maximum of 1000"),
        (" 3 ", "is not of type 'integer', 'string'"),
        ("1_0", "is not of type 'integer', 'string'"),
        ("\u0663", "is not of type 'integer', 'string'"),
        (True, "is not of type 'integer'"),
        (None, "is not of type 'integer', 'string'"),
        ([1], "is not of type 'integer', 'string'"),
        (0, "less than the minimum of 1"),
        ("-1", "less than the minimum of 1"),
        (1001, "1001 is greater than the maximum of 1000"),
        (10**20, "greater than the maximum of 1000"),
    ],
)
def test_count_value_refusals(value: object, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        params.count_value(value, "min_count", 1000)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        ("2147483647", 2147483647),
        ("2147483648", None),
        ("99999999999999999999", None),
        ("x", None),
        ("-1", None),
        ("\u0661", None),
        ("", None),
        ("1" * 5000, None),
        (" 5", None),
    ],
)
def test_db_int(value: str, expected: int | None) -> None:
    assert params.db_int(value) == expected


@pytest.mark.parametrize("value", [["a"], 5, {"h": 1}, "", "bad host", "h\x01", "h\n", "h" * 256])
def test_host_value_refusals(value: object) -> None:
    with pytest.raises(BadRequest, match="field/attribute host"):
        params.host_value(value)


def test_host_value_accepts_names_and_none() -> None:
    assert params.host_value("compute-1.example_a") == "compute-1.example_a"
    assert params.host_value(None) is None


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        (5, "key_name", "is not of type 'string'"),
        (["nova"], "availability_zone", "is not of type 'string'"),
        ("a\x07", "key_name", "must be printable"),
        ("a" * 256, "key_name", "must be 1-255"),
    ],
)
def test_optional_name_refusals(value: object, field: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        params.optional_name(value, field)


def test_optional_name_absent() -> None:
    assert params.optional_name(None, "key_name") is None
    assert params.optional_name("", "availability_zone") is None
    assert params.optional_name("nova", "availability_zone") == "nova"


def test_string_value() -> None:
    assert params.string_value("", "accessIPv4") == ""
    assert params.string_value("line\nbreak", "description", printable=False) == "line\nbreak"
    for bad, message in ((5, "not of type 'string'"), ("x" * 256, "longer than 255"), ("a\nb", "printable")):
        with pytest.raises(BadRequest, match=message):
            params.string_value(bad, "accessIPv4")


def test_page_maximum() -> None:
    assert params.page("99999999999999999999", None, maximum=params.MAX_INT).limit == params.MAX_INT
