"""Parse and validate Placement request bodies and query strings, per microversion.

Bodies get the checks of Placement's JSON schemas (types, bounds, required and unexpected
keys); query strings its parameter syntax. Everything invalid is a 400, never a 500."""

from __future__ import annotations

import re
import uuid as uuidlib
from collections.abc import Iterable, Sequence
from typing import Any

from kumo.errors import BadRequest
from kumo.placement.api.exceptions import BadQueryValue, DuplicateQueryKey, MissingQueryValue
from kumo.placement.api.microversion import Version
from kumo.placement.candidates import CandidateRequest, RequestGroup
from kumo.validation import MAX_INT, int_text

Query = Sequence[tuple[str, str]]

_RC = re.compile(r"^[A-Z0-9_]+$")
# ASCII digits: str.isdigit() also takes "¹", which int() refuses (a 500), and int() takes "٣".
_SUFFIX = re.compile(r"^[1-9][0-9]*$")
_SUFFIX_1_33 = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def invalid(message: str) -> BadRequest:
    return BadRequest(f"JSON does not validate: {message}")


# ---------------------------------------------------------------------------- bodies


def obj(
    body: Any, required: Iterable[str], optional: Iterable[str] = (), where: str = "body"
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid(f"{where} is not of type 'object'")
    required = list(required)
    for key in required:
        if key not in body:
            raise invalid(f"'{key}' is a required property")
    extra = sorted(set(body) - set(required) - set(optional))
    if extra:
        raise invalid(
            f"Additional properties are not allowed ({', '.join(repr(k) for k in extra)} were unexpected)"
        )
    return body


def integer(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{value!r} is not of type 'integer' in {name}")
    if minimum is not None and value < minimum:
        raise invalid(f"{value} is less than the minimum of {minimum} in {name}")
    if maximum is not None and value > maximum:
        raise invalid(f"{value} is greater than the maximum of {maximum} in {name}")
    if not -MAX_INT - 1 <= value <= MAX_INT:  # every integer kumo stores is a 32-bit INTEGER
        raise invalid(f"{value} is out of range for a 32-bit integer in {name}")
    return value


def generation(value: Any, name: str = "resource_provider_generation") -> int:
    """A provider generation the client saw. It is compared in SQL with the generation column
    (a 32-bit integer), so one outside that range is refused here: it could never match, and
    as a bound parameter it overflowed the column (a 500)."""
    return integer(value, name, -MAX_INT - 1, MAX_INT)


def nullable_integer(value: Any, name: str) -> int | None:
    return None if value is None else integer(value, name)


def string(value: Any, name: str, min_length: int = 1, max_length: int = 255) -> str:
    if not isinstance(value, str):
        raise invalid(f"{value!r} is not of type 'string' in {name}")
    if not min_length <= len(value) <= max_length:
        raise invalid(f"{value!r} in {name} must be {min_length} to {max_length} characters long")
    return value


def uuid_string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"{value!r} is not of type 'string' in {name}")
    try:
        return str(uuidlib.UUID(value))
    except ValueError as exc:
        raise invalid(f"{value!r} is not a 'uuid' in {name}") from exc


def resource_class(value: Any, name: str = "resource class") -> str:
    if not isinstance(value, str) or not _RC.match(value) or len(value) > 255:
        raise invalid(f"{value!r} does not match '^[A-Z0-9_]+$' in {name}")
    return value


def resources(value: Any, name: str, allow_empty: bool = False) -> dict[str, int]:
    if not isinstance(value, dict) or (not value and not allow_empty):
        raise invalid(f"{name} must be a non-empty object of resource class: amount")
    return {resource_class(rc, name): integer(n, f"{name}.{rc}", 1, MAX_INT) for rc, n in value.items()}


def inventory(
    value: Any, name: str, *, with_class: bool = False, with_generation: bool = False
) -> dict[str, Any]:
    required = ["total"] + (["resource_class"] if with_class else [])
    required += ["resource_provider_generation"] if with_generation else []
    body = obj(value, required, ["reserved", "min_unit", "max_unit", "step_size", "allocation_ratio"], name)
    record: dict[str, Any] = {"total": integer(body["total"], f"{name}.total", 1, MAX_INT)}
    for key, minimum in (("reserved", 0), ("min_unit", 1), ("max_unit", 1), ("step_size", 1)):
        if key in body:
            record[key] = integer(body[key], f"{name}.{key}", minimum, MAX_INT)
    if "allocation_ratio" in body:
        ratio = body["allocation_ratio"]
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 3.40282e38:
            raise invalid(f"{ratio!r} is not a valid allocation_ratio in {name}")
        record["allocation_ratio"] = float(ratio)
    return record


def inventories(value: Any, name: str = "inventories") -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise invalid(f"{name} is not of type 'object'")
    return {resource_class(rc): inventory(v, f"{name}.{rc}") for rc, v in value.items()}


def uuid_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list):
        raise invalid(f"{name} is not of type 'array'")
    uuids = [uuid_string(v, name) for v in value]
    if len(set(uuids)) != len(uuids):
        raise invalid(f"{name} has non-unique elements")
    return uuids


def trait_list(value: Any, name: str = "traits") -> list[str]:
    if not isinstance(value, list):
        raise invalid(f"{name} is not of type 'array'")
    names = [string(v, name) for v in value]
    if len(set(names)) != len(names):
        raise invalid(f"{name} has non-unique elements")
    return names


# ---------------------------------------------------------------------------- query strings


def check_keys(query: Query, allowed: Iterable[str], patterns: Iterable[re.Pattern[str]] = ()) -> None:
    allowed = set(allowed)
    patterns = list(patterns)
    for key, _value in query:
        if key not in allowed and not any(p.match(key) for p in patterns):
            raise BadRequest(
                "Invalid query string parameters: Additional properties are not allowed "
                f"('{key}' was unexpected)"
            )


def last(query: Query, key: str) -> str | None:
    values = [v for k, v in query if k == key]
    return values[-1] if values else None


def parse_resources(value: str) -> dict[str, int]:
    """`VCPU:2,MEMORY_MB:1024`: each amount 1..MAX_INT (Placement's bound for amounts)."""
    result: dict[str, int] = {}
    for item in value.split(","):
        rc, sep, text = item.strip().partition(":")
        amount = int_text(text, 1, MAX_INT)
        if not sep or not _RC.match(rc) or amount is None or rc in result:
            raise BadQueryValue(
                "Badly formed resources parameter. Expected resources query string parameter in form: "
                f"?resources=VCPU:2,MEMORY_MB:1024. Got: {value}."
            )
        result[rc] = amount
    return result


def parse_required(value: str, allow_forbidden: bool) -> tuple[list[frozenset[str]], set[str]]:
    """`A,!B` -> ([{A}], {B})."""
    required: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for raw in value.split(","):
        name = raw.strip()
        negated = allow_forbidden and name.startswith("!")
        name = name[1:] if negated else name
        if not name or not _RC.match(name):
            form = "HW_CPU_X86_VMX,!CUSTOM_MAGIC" if allow_forbidden else "HW_CPU_X86_VMX,CUSTOM_MAGIC"
            raise BadRequest(
                f"Invalid query string parameters: Expected 'required' parameter value of the form: {form}. "
                f"Got: {value}"
            )
        if negated:
            forbidden.add(name)
        else:
            required.append(frozenset([name]))
    conflicts = sorted({t for s in required for t in s} & forbidden)
    if conflicts:
        raise BadRequest(f"Conflicting required and forbidden traits found: {', '.join(conflicts)}")
    return required, forbidden


def parse_member_of(values: list[str], version: Version) -> tuple[list[frozenset[str]], set[str]]:
    """member_of=in:a,b / =a (1.3), several (1.24), !a and !in:a,b forbidden (1.32)."""
    if len(values) > 1 and not version.at_least(24):
        raise BadRequest("Multiple member_of parameters are not supported")
    member_of: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        negated = version.at_least(32) and value.startswith("!")
        body = value[1:] if negated else value
        any_of = body.startswith("in:")
        body = body[3:] if any_of else body
        try:
            uuids = {str(uuidlib.UUID(u.strip())) for u in body.split(",")}
        except ValueError as exc:
            raise BadRequest(
                f"Invalid query string parameters: Expected 'member_of' parameter to contain valid UUID(s). "
                f"Got: {value}"
            ) from exc
        if len(uuids) > 1 and not any_of:
            raise BadRequest(
                "Invalid query string parameters: Expected 'member_of' parameter with several UUIDs to start "
                f"with 'in:'. Got: {value}"
            )
        if negated:
            forbidden |= uuids
        else:
            member_of.append(frozenset(uuids))
    return member_of, forbidden


def parse_uuid_param(value: str, name: str) -> str:
    try:
        return str(uuidlib.UUID(value))
    except ValueError as exc:
        raise BadRequest(
            f"Invalid query string parameters: Expected '{name}' parameter to be a format of uuid. "
            f"Got: {value}"
        ) from exc


def parse_limit(value: str) -> int:
    number = int_text(value, 1)
    if number is None:
        raise BadRequest(
            f"Invalid query string parameters: '{value}' is not a valid limit (a positive integer)"
        )
    return min(number, MAX_INT)  # beyond every row; never beyond the database's LIMIT range


_GROUP_KEY = re.compile(r"^(resources|required|member_of|in_tree)(.*)$")


def candidate_request(query: Query, version: Version) -> CandidateRequest:
    """GET /allocation_candidates query string -> CandidateRequest."""
    allowed = {"resources"}
    for minor, key in (
        (16, "limit"),
        (17, "required"),
        (21, "member_of"),
        (25, "group_policy"),
        (31, "in_tree"),
    ):
        if version.at_least(minor):
            allowed.add(key)
    if version.at_least(35):
        allowed.add("root_required")
    suffix_re = _SUFFIX_1_33 if version.at_least(33) else _SUFFIX
    granular = ["resources", "required", "member_of"] + (["in_tree"] if version.at_least(31) else [])
    patterns = (
        [re.compile(f"^({'|'.join(granular)})({suffix_re.pattern[1:-1]})$")] if version.at_least(25) else []
    )
    check_keys(query, allowed, patterns)

    by_suffix: dict[str, dict[str, list[str]]] = {}
    for key, value in query:
        match = _GROUP_KEY.match(key)
        if match:
            prefix, suffix = match.groups()
            by_suffix.setdefault(suffix, {}).setdefault(prefix, []).append(value)
    allow_forbidden = version.at_least(22)
    groups: list[RequestGroup] = []
    for suffix, params in sorted(by_suffix.items()):
        required: list[frozenset[str]] = []
        forbidden: set[str] = set()
        if "required" in params:
            required, forbidden = parse_required(params["required"][-1], allow_forbidden)
        member_of: list[frozenset[str]] = []
        forbidden_aggs: set[str] = set()
        if "member_of" in params:
            member_of, forbidden_aggs = parse_member_of(params["member_of"], version)
        if "resources" not in params:
            key = "required" if "required" in params else "member_of" if "member_of" in params else "in_tree"
            if key in ("required", "member_of"):
                kind = "traits" if key == "required" else "member_of"
                raise BadRequest(
                    f"All {kind} parameters must be associated with resources. Found the following orphaned "
                    f"{kind} keys: {key}{suffix}"
                )
            raise BadRequest("All request groups must specify resources.")
        in_tree = params.get("in_tree")
        groups.append(
            RequestGroup(
                suffix=suffix,
                resources=parse_resources(params["resources"][-1]),
                required=tuple(required),
                forbidden=frozenset(forbidden),
                member_of=tuple(member_of),
                forbidden_aggregates=frozenset(forbidden_aggs),
                in_tree=parse_uuid_param(in_tree[-1], f"in_tree{suffix}") if in_tree else None,
            )
        )
    if not groups:
        raise MissingQueryValue("At least one request group (`resources` or `resources{$S}`) is required.")

    group_policy = last(query, "group_policy")
    if group_policy is not None and group_policy not in ("none", "isolate"):
        raise BadRequest(
            f"Invalid query string parameters: '{group_policy}' is not one of ['none', 'isolate']"
        )
    if group_policy is None and len([g for g in groups if g.suffix]) > 1:
        raise BadRequest(
            'The "group_policy" parameter is required when specifying more than one '
            '"resources{$S}" parameter.'
        )
    root_required: list[frozenset[str]] = []
    root_forbidden: set[str] = set()
    roots = [v for k, v in query if k == "root_required"]
    if len(roots) > 1:
        raise DuplicateQueryKey("Query parameter 'root_required' may be specified only once.")
    if roots:
        root_required, root_forbidden = parse_required(roots[0], True)
    limit = last(query, "limit")
    return CandidateRequest(
        groups=tuple(groups),
        limit=parse_limit(limit) if limit is not None else None,
        group_policy=group_policy,
        root_required=frozenset(t for s in root_required for t in s),
        root_forbidden=frozenset(root_forbidden),
    )


def traits_in(request: CandidateRequest) -> set[str]:
    names = set(request.root_required) | set(request.root_forbidden)
    for group in request.groups:
        names |= {t for s in group.required for t in s} | set(group.forbidden)
    return names
