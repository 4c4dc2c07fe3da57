"""Server tags as values (pure): Nova's limits on a tag and a server's tags, and the list
filters. The sub-resource's reads and writes are kumo.compute.server_tags."""

from __future__ import annotations

from typing import Any

from kumo.errors import BadRequest

MAX_TAGS = 50
MAX_TAG_LENGTH = 60


def tag_problem(tag: Any) -> str | None:
    """Why `tag` is not a valid tag (None: it is one)."""
    if not isinstance(tag, str):
        return f"{tag!r} is not of type 'string'"
    if not tag:
        return f"{tag!r} is too short"
    if len(tag) > MAX_TAG_LENGTH:
        return f"{tag!r} is too long"
    if "," in tag or "/" in tag:
        return f"{tag!r} does not match '^[^,/]*$'"
    if not tag.isprintable():
        return f"{tag!r} is not printable"
    return None


def validate_tags(value: Any, field: str = "tags") -> list[str]:
    """A body's list of tags (create's `tags`, PUT /tags): at most MAX_TAGS valid tags; a tag
    given twice is kept once, in its first place."""
    if not isinstance(value, list):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. is not of type 'array'"
        )
    if len(value) > MAX_TAGS:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value!r}. is too long "
            f"(at most {MAX_TAGS} tags)"
        )
    for tag in value:
        problem = tag_problem(tag)
        if problem is not None:
            raise BadRequest(f"Invalid input for field/attribute {field}. Value: {tag!r}. {problem}")
    return list(dict.fromkeys(value))
