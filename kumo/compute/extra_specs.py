"""Flavor extra specs validated on write, as Nova's extra-specs validators do.

Every key and value is a string of 1-255 (values 0-255) printable characters. Validated
further, as Nova's validators do:

- `resources{group}:<CLASS>`: a non-negative integer within a 32-bit int, and a standard
  (os-resource-classes) or CUSTOM_* resource class;
- `trait{group}:<TRAIT>`: `required` or `forbidden`, and a standard (os-traits) or CUSTOM_* trait.

What kumo's scheduler interprets of them (the rest is stored and shown, not acted on):

- `resources:<CLASS>` (no group): the amount requested of that class, overriding the flavor's
  sizes (`scheduling.resources_of`, by the same integer rule as the check here), so a
  scheduling pass can always read it; grouped `resources<group>:` and every `trait:` spec are
  validated only;
- `aggregate_instance_extra_specs:<key>` and keys without a namespace: any string, matched
  against aggregate metadata (`kumo/scheduler/filters.py`, AggregateInstanceExtraSpecsFilter).

kumo interprets no `hw:` spec (its drivers read only the flavor's sizes), so those, like every
other namespace, get only the string rules above."""

from __future__ import annotations

import re
from typing import Any

import os_resource_classes
import os_traits

from kumo.errors import BadRequest
from kumo.validation import MAX_INT, int_text

MAX_LENGTH = 255
KEY_PATTERN = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
_GROUP = r"([a-zA-Z0-9_-]{0,64})"
_RESOURCES = re.compile(rf"^resources{_GROUP}:(.*)$")
_TRAIT = re.compile(rf"^trait{_GROUP}:(.*)$")
_CUSTOM = re.compile(r"^CUSTOM_[A-Z0-9_]+$")
TRAIT_VALUES = ("required", "forbidden")
_STANDARD_CLASSES = frozenset(os_resource_classes.STANDARDS)
_STANDARD_TRAITS = frozenset(os_traits.get_traits())


def _failed(message: str) -> BadRequest:
    return BadRequest(f"Validation failed; {message}")


def spec_key(key: Any) -> str:
    """A key Nova's schema accepts: 1-255 of `a-zA-Z0-9-_:. `."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise BadRequest(
            f"Invalid input for field/attribute extra_specs. Value: {key!r}. Does not match pattern"
        )
    return key


def spec_value(key: str, value: Any) -> str:
    """Nova stores numbers and booleans as their string; anything else must be a string."""
    if isinstance(value, bool | int | float):
        value = str(value)
    if not isinstance(value, str):
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value!r}. is not of type 'string'"
        )
    if len(value) > MAX_LENGTH:
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value[:40]}... is too long")
    if not value.isprintable():
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value!r}. must be printable")
    return value


def resource_amount(key: str, value: str) -> int:
    """`resources:<CLASS>=N`: N a non-negative integer within a 32-bit int (the scheduler reads
    stored flavors by the same rule, `scheduling.resources_of`)."""
    amount = int_text(value, 0)
    if amount is None:
        raise _failed(f"extra spec '{key}': value '{value}' is not a valid integer value.")
    if amount > MAX_INT:
        raise _failed(f"extra spec '{key}': value '{value}' must be less than or equal to {MAX_INT}.")
    return amount


def resource_class_name(key: str, name: str) -> str:
    if name not in _STANDARD_CLASSES and not _CUSTOM.fullmatch(name):
        raise _failed(f"extra spec '{key}': '{name}' is not a standard or CUSTOM_* resource class.")
    return name


def trait_name(key: str, name: str) -> str:
    if name not in _STANDARD_TRAITS and not _CUSTOM.fullmatch(name):
        raise _failed(f"extra spec '{key}': '{name}' is not a standard or CUSTOM_* trait.")
    return name


def validate_spec(key: Any, value: Any) -> str:
    """One spec -> its stored string value, or a 400 naming what is wrong."""
    key = spec_key(key)
    text = spec_value(key, value)
    resources = _RESOURCES.match(key)
    if resources:
        resource_class_name(key, resources.group(2))
        resource_amount(key, text)
        return text
    trait = _TRAIT.match(key)
    if trait:
        trait_name(key, trait.group(2))
        if text not in TRAIT_VALUES:
            raise _failed(f"extra spec '{key}': value '{text}' must be one of {', '.join(TRAIT_VALUES)}.")
    return text


def validate_specs(specs: dict[str, Any]) -> dict[str, str]:
    """All of a write's specs validated (the first bad one is the 400), as strings."""
    return {key: validate_spec(key, value) for key, value in specs.items()}
