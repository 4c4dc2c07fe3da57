"""Database access: one engine per process, explicit transactions."""

from kumo.db.base import Base, Database, utcnow

__all__ = ["Base", "Database", "utcnow"]
