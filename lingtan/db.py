"""Relational storage through SQLAlchemy 2.0 (DEVELOPERS.md decision 2).

SQLite under the state directory is the default; PostgreSQL runs in docker-compose. Every
service declares its tables on :class:`Base` and opens sessions from :func:`session_factory`.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker


class Base(DeclarativeBase):
    """Declarative base of every Lingtan table."""


def make_engine(url: str, **engine_kw) -> Engine:
    """An engine for ``url``; SQLite gets a busy timeout and foreign keys, and its directory is created.

    ``engine_kw`` go to :func:`sqlalchemy.create_engine` (pool size, pool class).
    """
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **engine_kw)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API connection
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **engine_kw)


def session_factory(engine: Engine) -> sessionmaker:
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)
