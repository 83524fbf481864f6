"""``lingtan influx init``: provision InfluxDB 1.x from the InfluxQL files in ``influx/``.

The schema (database, retention policies, continuous queries) lives in ``influx/*.iql``
as plain InfluxQL, so it can be read, reviewed and run by hand; this module only reads
the files, substitutes ``{db}`` and runs the statements idempotently:

* ``CREATE DATABASE``: a no-op on InfluxDB 1.x when the database exists.
* ``CREATE RETENTION POLICY``: InfluxDB 1.6 accepts a CREATE whose settings equal the
  existing policy. When they differ it answers "retention policy already exists" (or
  "... conflicts with an existing policy" for the DEFAULT flag); the statement is then
  re-run as ``ALTER RETENTION POLICY`` with the same clauses.
* ``CREATE CONTINUOUS QUERY``: InfluxDB 1.x has no CREATE OR REPLACE. The statement is
  compared with ``SHOW CONTINUOUS QUERIES`` (whitespace-insensitive): identical ones are
  skipped, changed ones dropped and re-created. Continuous queries named ``lingtan_*``
  that the files no longer declare are dropped.
* anything else is run as written.

Before that, when the server has no users yet, the admin user is created: with
``auth-enabled = true`` and no users, InfluxDB 1.x refuses every statement except
``CREATE USER ... WITH ALL PRIVILEGES`` ("create admin user first or disable
authentication"), whatever credentials the request carries.

Only InfluxDB 1.x takes these statements (see docs/schema.md and the stack notes): 2.x
needs a bucket plus DBRP mapping and has no continuous queries, 3.x creates databases
on write.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from lingtan.influxdb import InfluxClient, InfluxError

#: default location of the InfluxQL files: ``<repo>/influx``
DEFAULT_FILES_DIR = Path(__file__).resolve().parents[2]  # influx/src/lingtan_influx/ -> influx/
#: continuous queries with this name prefix belong to Lingtan; undeclared ones are dropped
MANAGED_CQ_PREFIX = "lingtan_"

_IDENT = r'"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*'
_PLAIN_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CREATE_DB = re.compile(rf"^CREATE\s+DATABASE\s+({_IDENT})\s*$", re.IGNORECASE)
_CREATE_RP = re.compile(rf"^CREATE(\s+RETENTION\s+POLICY\s+({_IDENT})\s+ON\s+({_IDENT})\s.*)$",
                        re.IGNORECASE | re.DOTALL)
_CREATE_CQ = re.compile(rf"^CREATE\s+CONTINUOUS\s+QUERY\s+({_IDENT})\s+ON\s+({_IDENT})\s", re.IGNORECASE)
_NO_ADMIN = "create admin user first"
_RP_CHANGED = ("retention policy already exists", "retention policy conflicts with an existing policy")


@dataclass(frozen=True)
class Statement:
    """One InfluxQL statement read from a provisioning file."""

    text: str  # with {db} substituted, comments removed, surrounding whitespace stripped
    source: str  # "<file>:<line>" of the statement's first line

    @property
    def oneline(self) -> str:
        """The statement with runs of whitespace collapsed to one space."""
        return normalize_space(self.text)


def normalize_space(text: str) -> str:
    """Collapse runs of whitespace to single spaces (the form SHOW CONTINUOUS QUERIES prints)."""
    return " ".join(text.split())


def quote_ident(name: str) -> str:
    """Quote an InfluxQL identifier when it is not a plain ``[A-Za-z_][A-Za-z0-9_]*`` word."""
    if _PLAIN_IDENT.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def unquote_ident(ident: str) -> str:
    """Inverse of :func:`quote_ident` for identifiers matched by the statement patterns."""
    if ident.startswith('"') and ident.endswith('"'):
        return re.sub(r"\\(.)", r"\1", ident[1:-1])
    return ident


def split_statements(text: str) -> list[tuple[int, str]]:
    """Split InfluxQL ``text`` into statements.

    Statements end with ``;`` and may span lines; a last statement without ``;`` is
    accepted. ``--`` starts a comment up to the end of the line. Both are ignored inside
    single- or double-quoted strings and regex literals (``/.../``).

    Returns
    -------
    list of (line, statement)
        1-based line of the statement's first non-blank character and its text.
    """
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start_line: int | None = None
    line = 1
    quote: str | None = None  # closing character of the open string or regex literal
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            buf.append(ch)
            if ch == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                line += text[i + 1] == "\n"
                i += 2
                continue
            if ch == quote:
                quote = None
            line += ch == "\n"
            i += 1
            continue
        if text.startswith("--", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        if ch == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append((start_line or line, stmt))
            buf, start_line = [], None
            i += 1
            continue
        if ch in "'\"" or (ch == "/" and _regex_may_start("".join(buf))):
            quote = ch
        if start_line is None and not ch.isspace():
            start_line = line
        buf.append(ch)
        line += ch == "\n"
        i += 1
    stmt = "".join(buf).strip()
    if stmt:
        out.append((start_line or line, stmt))
    return out


def _regex_may_start(before: str) -> bool:
    """True when a ``/`` after ``before`` opens a regex literal rather than dividing."""
    before = before.rstrip()
    return bool(before) and (before[-1] in ".~,(" or re.search(r"\bFROM$", before, re.IGNORECASE) is not None)


def read_statements(files_dir: Path, database: str) -> list[Statement]:
    """All statements of ``files_dir/*.iql`` in file-name order, with ``{db}`` substituted.

    Raises
    ------
    FileNotFoundError
        If the directory holds no ``.iql`` file.
    """
    files = sorted(Path(files_dir).glob("*.iql"))
    if not files:
        raise FileNotFoundError(f"no InfluxQL files (*.iql) in {files_dir}")
    db = quote_ident(database)
    statements = []
    for path in files:
        for line, text in split_statements(path.read_text(encoding="utf-8")):
            statements.append(Statement(text.replace("{db}", db), f"{path.name}:{line}"))
    return statements


# --------------------------------------------------------------------------- server state


def _databases(client: InfluxClient) -> set[str]:
    return {row["name"] for row in client.rows("SHOW DATABASES", database="")}


def _retention_policies(client: InfluxClient, database: str) -> dict[str, dict]:
    rows = client.rows(f"SHOW RETENTION POLICIES ON {quote_ident(database)}", database="")
    return {row["name"]: row for row in rows}


def _continuous_queries(client: InfluxClient, database: str) -> dict[str, str]:
    """Name -> query text of the continuous queries of ``database``."""
    out: dict[str, str] = {}
    for series in client.series("SHOW CONTINUOUS QUERIES", database=""):
        if series.get("name") != database:
            continue
        for name, query in series.get("values", []):
            out[name] = query
    return out


def _rp_summary(row: dict | None) -> str:
    if row is None:
        return "absent"
    default = ", default" if row.get("default") else ""
    return f"duration {row['duration']}, shard {row['shardGroupDuration']}, replication {row['replicaN']}{default}"


# --------------------------------------------------------------------------- steps


def _ensure_admin(client: InfluxClient, admin_user: str | None, admin_password: str | None) -> list[str]:
    """Create the admin user if the server has no users yet."""
    try:
        users = client.rows("SHOW USERS", database="")
    except InfluxError as exc:
        if _NO_ADMIN not in str(exc):
            raise
        users = None  # auth enabled and no user at all
    if users:
        return []
    if not admin_user or not admin_password:
        if users is None:
            raise InfluxError(
                f"InfluxDB at {client.url} has authentication enabled but no users: "
                "give an admin user name and password so that init can create the admin user",
                retryable=False,
            )
        return ["users: none, authentication disabled on the server; no admin user given, none created"]
    client.query(
        f"CREATE USER {quote_ident(admin_user)} WITH PASSWORD {quote_string(admin_password)} WITH ALL PRIVILEGES",
        database="",
    )
    return [f"user {admin_user}: created (admin, the server had no users)"]


def _apply_database(client: InfluxClient, stmt: Statement, name: str) -> str:
    existed = name in _databases(client)
    client.query(stmt.text, database="")
    return f"database {name}: {'unchanged' if existed else 'created'}"


def _apply_retention_policy(client: InfluxClient, stmt: Statement, name: str, database: str) -> str:
    before = _retention_policies(client, database).get(name) if database in _databases(client) else None
    action = "created" if before is None else "unchanged"
    try:
        client.query(stmt.text, database="")
    except InfluxError as exc:
        if before is None or not any(marker in str(exc) for marker in _RP_CHANGED):
            raise
        match = _CREATE_RP.match(stmt.text)
        assert match is not None  # the caller matched the same pattern
        client.query("ALTER" + match.group(1), database="")
        action = "altered"
    after = _retention_policies(client, database).get(name)
    if action == "unchanged" and after != before:
        action = "altered"
    if action == "altered":
        return f"retention policy {name}: altered ({_rp_summary(before)} -> {_rp_summary(after)})"
    return f"retention policy {name}: {action} ({_rp_summary(after)})"


def _apply_continuous_query(
    client: InfluxClient, stmt: Statement, name: str, database: str, existing: dict[str, str]
) -> str:
    current = existing.get(name)
    if current is not None and normalize_space(current) == stmt.oneline:
        return f"continuous query {name}: unchanged"
    if current is not None:
        client.query(f"DROP CONTINUOUS QUERY {quote_ident(name)} ON {quote_ident(database)}", database="")
    client.query(stmt.oneline, database="")
    existing[name] = stmt.oneline
    return f"continuous query {name}: {'re-created (definition changed)' if current is not None else 'created'}"


def init_influx(
    client: InfluxClient,
    *,
    admin_user: str | None,
    admin_password: str | None,
    files_dir: Path = DEFAULT_FILES_DIR,
) -> list[str]:
    """Provision the InfluxDB 1.x server behind ``client``; safe to run any number of times.

    Parameters
    ----------
    client
        Connection to the server. ``client.database`` is substituted for ``{db}``.
    admin_user, admin_password
        Credentials used for the DDL statements, and to create the admin user when the
        server has no users yet. ``None``: use the client's own credentials (which must
        then belong to an admin).
    files_dir
        Directory with the ``*.iql`` files, run in file-name order.

    Returns
    -------
    list of str
        One line per action, e.g. ``"retention policy raw: created (...)"`` or
        ``"continuous query lingtan_carriers_1m: unchanged"``. A second run on an
        unchanged server reports every object as ``unchanged``.

    Raises
    ------
    InfluxError
        When the server is unreachable, is not InfluxDB 1.x, refuses a statement, or has
        authentication enabled but no users and no admin credentials were given.
    """
    statements = read_statements(files_dir, client.database)
    version = _require_influxdb_1(client)
    log = [f"server: {client.url} (InfluxDB {version})"]
    if admin_user:
        client = dataclasses.replace(client, username=admin_user, password=admin_password or "")
    log += _ensure_admin(client, admin_user, admin_password)

    declared_cqs: dict[str, set[str]] = {}
    cq_cache: dict[str, dict[str, str]] = {}
    for stmt in statements:
        try:
            log.append(_apply_statement(client, stmt, declared_cqs, cq_cache))
        except InfluxError as exc:
            raise InfluxError(f"{stmt.source}: {exc}", status=exc.status, retryable=exc.retryable) from exc

    log += _drop_undeclared_cqs(client, declared_cqs, cq_cache)
    return log


def _require_influxdb_1(client: InfluxClient) -> str:
    """The server's version; raises unless it is InfluxDB 1.x (or does not say)."""
    version = client.ping()
    if version != "unknown" and not version.startswith("1."):
        raise InfluxError(
            f"InfluxDB at {client.url} is version {version}: `lingtan influx init` provisions InfluxDB 1.x only "
            "(2.x: create the bucket and a DBRP mapping; 3.x: the database is created on first write)",
            retryable=False,
        )
    return version


def _apply_statement(
    client: InfluxClient, stmt: Statement, declared_cqs: dict[str, set[str]], cq_cache: dict[str, dict[str, str]]
) -> str:
    """Run one statement idempotently (see the module docstring); returns its log line.

    Continuous queries are noted in ``declared_cqs`` by database; ``cq_cache`` holds each database's
    ``SHOW CONTINUOUS QUERIES``, read once.
    """
    if m := _CREATE_DB.match(stmt.text):
        return _apply_database(client, stmt, unquote_ident(m.group(1)))
    if m := _CREATE_RP.match(stmt.text):
        return _apply_retention_policy(client, stmt, unquote_ident(m.group(2)), unquote_ident(m.group(3)))
    if m := _CREATE_CQ.match(stmt.text):
        name, database = unquote_ident(m.group(1)), unquote_ident(m.group(2))
        if database not in cq_cache:
            cq_cache[database] = _continuous_queries(client, database)
        declared_cqs.setdefault(database, set()).add(name)
        return _apply_continuous_query(client, stmt, name, database, cq_cache[database])
    client.query(stmt.oneline, database="")
    return f"ran: {stmt.oneline[:120]}"


def _drop_undeclared_cqs(
    client: InfluxClient, declared_cqs: dict[str, set[str]], cq_cache: dict[str, dict[str, str]]
) -> list[str]:
    """Drop the ``lingtan_*`` continuous queries that the files no longer declare."""
    log: list[str] = []
    for database, names in declared_cqs.items():
        for name in sorted(set(cq_cache[database]) - names):
            if name.startswith(MANAGED_CQ_PREFIX):
                client.query(f"DROP CONTINUOUS QUERY {quote_ident(name)} ON {quote_ident(database)}", database="")
                log.append(f"continuous query {name}: dropped (no longer declared)")
    return log
