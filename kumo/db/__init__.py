"""Database access: one engine per process, explicit transactions."""

from kumo.db.base import Base, Database, durable_before_it_leaves, utcnow, wake_after_commit

__all__ = ["Base", "Database", "durable_before_it_leaves", "utcnow", "wake_after_commit"]
