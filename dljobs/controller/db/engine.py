"""Engines and sessions for SQLite (embedded, WAL) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    # No pre-ping (a round trip per checkout): a connection found dead invalidates the pool, the request
    # that met it answers 503 with Retry-After (the SDK retries), and the next checkout reconnects.
    engine = create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800
    )
    _configure_postgres(engine)
    return engine


# SQLSTATE classes of a lost server: 08 connection exception; 57P operator intervention (admin or crash
# shutdown, "cannot connect now" while it starts or stops).
_UNAVAILABLE_SQLSTATES = ("08", "57P")


def lost_server(error: BaseException | None) -> bool:
    """Whether a driver error (or one it was raised from) means the server went away, not a bad statement."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError):
            return True
        if str(getattr(error, "sqlstate", "") or "").startswith(_UNAVAILABLE_SQLSTATES):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def _configure_postgres(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: Any) -> None:
        # asyncpg reports a connection the server closed mid-statement (a restart, a failover) in words
        # SQLAlchemy does not recognise as a disconnect; say so, so that the whole pool is replaced.
        if not context.is_disconnect and lost_server(context.original_exception):
            context.is_disconnect = True


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (below); the driver must not.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout instead of one of them
        # failing with "database is locked" when a read transaction later tries to write.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def autocommit_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """For work that writes in one statement: on PostgreSQL each statement commits by itself, which saves
    the BEGIN and COMMIT round trips. On SQLite, ordinary sessions (a write takes the lock with BEGIN
    IMMEDIATE)."""
    if engine.dialect.name != "postgresql":
        return session_factory(engine)
    return session_factory(engine.execution_options(isolation_level="AUTOCOMMIT"))
