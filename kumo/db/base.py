"""Engine, declarative base and the transaction helper every domain module uses."""

from __future__ import annotations

import datetime as dt
import logging
import os
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import MetaData, create_engine, event, exc, text
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> dt.datetime:
    """Naive UTC (stored as such in every backend)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def private_sqlite_file(url: str) -> None:
    """A SQLite database file only its owner may read: its directory, if new, created 0700;
    the file created 0600 before SQLite opens it (SQLite gives the -wal and -shm files it
    creates the database file's mode), and it, -wal and -shm tightened to 0600 if they were
    left wider. In-memory databases: nothing to do."""
    if not url.startswith("sqlite") or "///" not in url:
        return
    name = url.split("///", 1)[1].split("?", 1)[0]
    if not name or name == ":memory:":
        return
    path = Path(name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file is a new database
    for file in (path, Path(f"{name}-wal"), Path(f"{name}-shm")):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            continue


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Autocommit mode at the driver level; SQLAlchemy's "begin" hook emits BEGIN IMMEDIATE so
    # concurrent writers queue on the busy timeout instead of failing with SQLITE_BUSY.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _drop_if_server_hung_up(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling without a round trip per checkout (SQLAlchemy's
    pool_pre_ping costs three: its SELECT 1 and the transaction around it, paid by every
    transaction, a lone scheduling pass included). A pooled connection sits idle, so the server
    has nothing to say to it unless it is going away: a backend terminated by a restart or an
    administrator sends an error and closes the socket. Only when the socket has something to
    read is the connection pinged; a dead one raises DisconnectionError, on which the pool
    replaces it with a fresh connection (and tries again, up to three times)."""
    if dbapi_conn.closed or dbapi_conn.broken:
        raise exc.DisconnectionError("the connection is closed")
    # poll, not select: a busy process's descriptors pass select's limit of 1,024.
    readable = select.poll()
    readable.register(dbapi_conn.fileno(), select.POLLIN)
    if not readable.poll(0):
        return
    try:
        dbapi_conn.execute("SELECT 1")
        dbapi_conn.rollback()
    except Exception as error:  # the driver's error for a connection the server closed
        raise exc.DisconnectionError(str(error)) from error


def _check_on_checkout(engine: Engine) -> Engine:
    """A PostgreSQL engine's pool checks each connection it hands out (_drop_if_server_hung_up)."""
    event.listen(engine, "checkout", _drop_if_server_hung_up)
    return engine


def _without_values(context: ExceptionContext) -> None:
    """A failed statement's exceptions keep the driver's first line and the statement, never a
    value: bound parameters are hidden (hide_parameters on every engine), and the lines the
    driver adds after the first are dropped from its exception and from SQLAlchemy's, before
    either is raised, logged or shown: PostgreSQL's DETAIL repeats the failing row whole (NOT
    NULL and CHECK violations) or the duplicate key, and its CONTEXT may quote a parameter."""
    driver_error = context.original_exception
    message = str(driver_error)
    first_line = message.split("\n", 1)[0]
    if first_line == message:
        return
    driver_error.args = (first_line,)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        kind = type(driver_error)
        wrapped.args = (f"({kind.__module__}.{kind.__name__}) {first_line}",)


def _hiding_values(engine: Engine) -> Engine:
    event.listen(engine, "handle_error", _without_values)
    return engine


_local = threading.local()


def _sqlite_begin(conn: Any) -> None:
    # Readers take no lock (WAL lets them run beside the writer); writers take the write lock
    # up front so a transaction never fails half-way on a lock upgrade.
    conn.exec_driver_sql("BEGIN" if getattr(_local, "readonly", False) else "BEGIN IMMEDIATE")


# The chooser of a database's store (kumo.store.choice registers it; kumo.db knows no store):
# called once per Database, with its engine's dialect name, the first time its store is asked for.
StoreChooser = Callable[[str], object]
_store_chooser: list[StoreChooser] = []


def choose_stores_with(chooser: StoreChooser) -> None:
    """Register the chooser of every Database's store (see kumo.store)."""
    _store_chooser[:] = [chooser]


WAKE_AFTER_COMMIT = "kumo.db.wake_after_commit"  # session.info key: wake-up keys owed on commit
log = logging.getLogger("kumo.db")


def wake_after_commit(session: Session, key: str) -> None:
    """Once this session's transaction commits, the process publishes `key` (its runtime's
    `Waker.publish`, set at start-up as `Database.publish`): a waiter for what the transaction
    wrote hears of it then, never before it is visible. A rollback publishes nothing; a lost
    wake-up costs the waiter's periodic re-read, never the work."""
    session.info.setdefault(WAKE_AFTER_COMMIT, set()).add(key)


def _publish_committed(session: Session) -> None:
    keys: set[str] | None = session.info.pop(WAKE_AFTER_COMMIT, None)
    database = session.info.get("database")
    publish = getattr(database, "publish", None)
    if not keys or publish is None:
        return
    for key in sorted(keys):
        try:
            publish(key)
        except Exception:  # noqa: BLE001 — committed either way; the waiter re-reads later
            log.warning("publishing %s after a commit failed", key, exc_info=True)


def _forget_wakes(session: Session, previous: Any) -> None:
    if previous.parent is None:
        session.info.pop(WAKE_AFTER_COMMIT, None)


AFTER_COMMIT = "kumo.db.after_commit"  # session.info key: (transaction, callback) owed on commit


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once this session's transaction commits (a counter of what it wrote:
    counted once, never for a rolled-back transaction or savepoint)."""
    current = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(AFTER_COMMIT, []).append((current, callback))


def _run_committed(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint released: its outer transaction goes on
        return
    for _, callback in session.info.pop(AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # noqa: BLE001 — committed either way
            log.warning("an after-commit callback failed", exc_info=True)


def _forget_rolled_back(session: Session, previous: Any) -> None:
    owed = session.info.get(AFTER_COMMIT)
    if not owed:
        return
    if previous.parent is None:
        session.info.pop(AFTER_COMMIT, None)
        return

    def within(transaction: Any) -> bool:
        while transaction is not None:
            if transaction is previous:
                return True
            transaction = transaction.parent
        return False

    session.info[AFTER_COMMIT] = [(t, c) for t, c in owed if not within(t)]


event.listen(Session, "after_commit", _publish_committed)
event.listen(Session, "after_soft_rollback", _forget_wakes)
event.listen(Session, "after_commit", _run_committed)
event.listen(Session, "after_soft_rollback", _forget_rolled_back)


class Database:
    """Owns the engine; `transaction()` is the only way domain code touches the database.

    Its store (kumo.store: what differs between databases) is `store` if given, else the one
    the registered chooser picks for its engine, once; each of its sessions carries the
    database in `session.info["database"]` (kumo.store.protocol.store_of)."""

    def __init__(self, url: str, pool_size: int = 10, store: object | None = None) -> None:
        self.url = url
        self._store = store
        # What publishes the keys of `wake_after_commit` (the runtime's waker; kumo/runtime.py
        # sets it): None publishes nothing (a bare Database, a migration).
        self.publish: Callable[[str], None] | None = None
        # Where the data of images discarded inside a transaction is deleted once it commits
        # (an object with `delete(image_id)`: kumo.image.store; kumo.wiring.build_runtime sets it).
        self.image_store: Any = None
        # JSON columns (flavor, metadata, tags…) are decoded for every row a list returns, with
        # orjson (a large share of a list page's CPU otherwise). Writing keeps the standard
        # library's encoder.
        # hide_parameters: no bound value (user_data, a password hash) in any exception or log.
        kwargs: dict[str, Any] = {"future": True, "json_deserializer": orjson.loads, "hide_parameters": True}
        if url.startswith("sqlite"):
            private_sqlite_file(url)
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = 20
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = 20
        self.engine: Engine = _hiding_values(create_engine(url, **kwargs))
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            _check_on_checkout(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info={"database": self})
        # SQLite has one writer at a time. Queueing writers on a Python lock hands the database
        # over at once; SQLite's own busy handler sleeps in growing steps under contention.
        self._write_lock: threading.Lock | None = threading.Lock() if self.is_sqlite else None
        # PostgreSQL: a small second pool whose connections commit asynchronously (their
        # session's synchronous_commit is off from the start), for transaction(durable=False):
        # no SET per transaction, so such a transaction costs no extra round trip. Opened on
        # first use (only schedulers use it).
        self._async_kwargs = {
            **kwargs,
            "pool_size": 2,
            "max_overflow": 8,
            "connect_args": {"options": "-c synchronous_commit=off"},
        }
        self._async_engine: Engine | None = None
        self._async_sessions: sessionmaker[Session] | None = None
        self._async_lock = threading.Lock()

    @property
    def store(self) -> object:
        """This database's store (typed: kumo.store.protocol.database_store)."""
        if self._store is None:
            if not _store_chooser:
                raise RuntimeError("no store chooser registered: import kumo.store.choice at start-up")
            self._store = _store_chooser[0](self.engine.dialect.name)
        return self._store

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception.

        `durable=False` (PostgreSQL's asynchronous commit): the commit returns once it is
        visible to every other transaction, without waiting for its WAL to reach the disk; a
        crash of the database within a fraction of a second may lose it, whole and alone (never
        corrupt it, never keep a later commit that saw it). For work the system can redo, such
        as a scheduling pass: lost, the server is pending again and is placed anew. Nothing of
        such a commit may leave the database before it is durable: whatever hands out what
        such a commit wrote (the agents' task polls) calls `durable_before_it_leaves` first.
        SQLite commits are always durable."""
        if self._write_lock is None:
            sessions = self._sessions if durable else self._asynchronous_sessions()
            with sessions() as session, session.begin():
                yield session
            return
        with self._write_lock, self._sessions() as session, session.begin():
            yield session

    def _asynchronous_sessions(self) -> sessionmaker[Session]:
        with self._async_lock:
            if self._async_sessions is None:
                engine = _hiding_values(create_engine(self.url, **self._async_kwargs))
                self._async_engine = _check_on_checkout(engine)
                self._async_sessions = sessionmaker(
                    self._async_engine, expire_on_commit=False, info={"database": self}
                )
            return self._async_sessions

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work: on SQLite it runs beside the writer, without its lock, and
        a write attempted in it fails loudly (query_only)."""
        if self._write_lock is None:
            with self._sessions() as session, session.begin():
                yield session
            return
        _local.readonly = True
        try:
            with self._sessions() as session, session.begin():
                conn = session.connection()
                conn.exec_driver_sql("PRAGMA query_only=1")
                try:
                    yield session
                finally:
                    conn.exec_driver_sql("PRAGMA query_only=0")
        finally:
            _local.readonly = False

    def dispose(self) -> None:
        self.engine.dispose()
        if self._async_engine is not None:
            self._async_engine.dispose()


def durable_before_it_leaves(session: Session) -> None:
    """Make every commit this session's transaction can see durable by the time it commits,
    those of `Database.transaction(durable=False)` included: call it before anything read
    here leaves the database (a task handed to an agent starts a VM or deploys a machine).

    On PostgreSQL the transaction writes a transactional logical message (a WAL record of a
    few bytes that touches no table, allowed to any role), so its commit is synchronous and
    waits for the WAL to be flushed up to its commit record: past the commit record of every
    transaction it can see, which was written before that transaction became visible. (Taking
    a transaction id alone is not enough: PostgreSQL commits a transaction that wrote no WAL
    without a flush.) One WAL flush, only for a read that found something to hand out.
    SQLite: nothing to do, its commits are all durable."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_logical_emit_message(true, 'kumo', 'durable')"))
