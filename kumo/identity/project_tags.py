"""Project tags as values (pure): Keystone's limits on a tag and a project's tags, and the
project list's tag filters. Reads and writes of a project's tags are in kumo.identity.admin."""

from __future__ import annotations

from typing import Any

from kumo.errors import BadRequest

MAX_TAGS = 80
MAX_TAG_LENGTH = 255


def tag_problem(tag: Any) -> str | None:
    """Why `tag` is not a valid project tag (None: it is one); Keystone's schema."""
    if not isinstance(tag, str):
        return f"{tag!r} is not of type 'string'"
    if not tag:  # Keystone's minLength 1: a tag of spaces is a tag
        return f"{tag!r} is too short"
    if len(tag) > MAX_TAG_LENGTH:
        return f"{tag!r} is too long"
    if "," in tag or "/" in tag:
        return f"{tag!r} does not match '^[^,/]*$'"
    return None


def check_tag(tag: str) -> str:
    problem = tag_problem(tag)
    if problem is not None:
        raise BadRequest(f"Invalid input for field 'tags': {problem}")
    return tag


def validate_tags(value: Any) -> list[str]:
    """A body's list of tags (a project's `tags`, PUT /tags): at most MAX_TAGS valid tags, no
    tag twice (Keystone's `uniqueItems`)."""
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for field 'tags': {value!r} is not of type 'array'")
    if len(value) > MAX_TAGS:
        raise BadRequest(f"Invalid input for field 'tags': more than {MAX_TAGS} tags")
    for tag in value:
        check_tag(tag)
    if len(set(value)) != len(value):
        raise BadRequest(f"Invalid input for field 'tags': {value!r} has non-unique elements")
    return list(value)


def add_tag(tags: list[str], tag: str) -> list[str]:
    """The tags with `tag` added (once); at most MAX_TAGS."""
    check_tag(tag)
    if tag in tags:
        return list(tags)
    if len(tags) >= MAX_TAGS:
        raise BadRequest(f"Invalid input for field 'tags': more than {MAX_TAGS} tags")
    return [*tags, tag]
