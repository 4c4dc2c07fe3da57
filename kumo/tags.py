"""The tag list filters Nova (servers) and Keystone (projects) share (pure): `tags`, `tags-any`,
`not-tags`, `not-tags-any`. Each service's own limits on a tag stay with it
(kumo.compute.tags, kumo.identity.project_tags)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class TagFilter:
    """The list filters: `tags` (every one), `tags-any` (at least one), `not-tags` (not every
    one), `not-tags-any` (none of them); each a comma-separated list in the query string."""

    all_of: frozenset[str] = frozenset()
    any_of: frozenset[str] = frozenset()
    not_all_of: frozenset[str] = frozenset()
    none_of: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, query: dict[str, str]) -> TagFilter:
        def split(name: str) -> frozenset[str]:
            raw = query.get(name)
            return frozenset(t for t in raw.split(",") if t) if raw else frozenset()

        return cls(split("tags"), split("tags-any"), split("not-tags"), split("not-tags-any"))

    def __bool__(self) -> bool:
        return bool(self.all_of or self.any_of or self.not_all_of or self.none_of)

    def matches(self, tags: Iterable[str]) -> bool:
        held = set(tags)
        if self.all_of and not self.all_of <= held:
            return False
        if self.any_of and not self.any_of & held:
            return False
        if self.not_all_of and self.not_all_of <= held:
            return False
        return not (self.none_of and self.none_of & held)
