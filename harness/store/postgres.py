"""PostgreSQL backend: one database shared by every runner of a device lab.

    --store postgresql://USER@HOST:PORT/DBNAME        (postgres:// works too)

Any libpq connection parameter can be added as a query (`?sslmode=require`,
`?options=-csearch_path%3Dresults` for a schema of its own). Put the password in
`~/.pgpass`, `PGPASSFILE` or `PGPASSWORD`, not in the URL: the URL is stored with each run's
options. A password in the URL still works, and the store never prints it: `url` and every
message carry the URL without it.

Each write is one short transaction on the orchestrator's own connection (autocommit
otherwise), so concurrent writers never wait for each other's runs; ids come from an
identity column. Creating or migrating the schema takes a transaction-level advisory lock,
so orchestrators starting at the same moment against an empty database create it once.
The driver is psycopg 3, imported only when a PostgreSQL store is opened.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from harness.errors import StoreError
from harness.store.schema import POSTGRESQL
from harness.store.sql import SQLStore, _one_line

SCHEMES = ("postgresql", "postgres")
SCHEMA_LOCK_KEY = 0x6564676548617273  # pg_advisory_xact_lock key of schema creation / migration
CONNECT_TIMEOUT_S = 10
_USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@\s]*@")


def redact_url(url: str) -> str:
    """The URL without a password (in the user part or a `password=` query parameter)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO_PASSWORD.sub(r"\1@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = f"{userinfo.split(':', 1)[0]}@{hosts}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class PostgresStore(SQLStore):
    dialect = POSTGRESQL
    backend = "postgresql"
    elsewhere = "another database"

    def __init__(self, url: str, *, migrate: bool = False) -> None:
        self.url = redact_url(url)
        self.where = self.url
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise StoreError(f"--store {self.url}: the PostgreSQL driver is not installed: "
                             "pip install 'psycopg[binary]'") from None
        self._psycopg = psycopg
        self._db_errors = (psycopg.Error,)
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise StoreError(f"--store {self.url}: not a valid PostgreSQL URL ({self._scrub(_one_line(exc))}); "
                             "write postgresql://USER@HOST:PORT/DBNAME") from None
        password = params.get("password")
        self._password = str(password) if password else None
        self._defaults: dict[str, Any] = {}
        if "connect_timeout" not in params:
            self._defaults["connect_timeout"] = CONNECT_TIMEOUT_S  # an unreachable host is an error, not a hang
        if "application_name" not in params:
            self._defaults["application_name"] = "edge-harness"
        self._conninfo = url
        self._db = self._connect()
        try:
            self._ensure_schema(migrate)
        except StoreError:
            self._db.close()
            raise

    def _connect(self):
        try:
            return self._psycopg.connect(self._conninfo, autocommit=True, **self._defaults)
        except self._psycopg.Error as exc:
            raise StoreError(f"cannot connect to results store {self.url}: {self._scrub(_one_line(exc))} "
                             "(is the server up and the URL right? a password goes in ~/.pgpass or "
                             "PGPASSWORD)") from None

    def _ready(self) -> None:
        if self._db.closed or self._db.broken:  # the server restarted, or the network dropped us
            self._db = self._connect()

    def _scrub(self, message: str) -> str:
        if self._password:
            message = message.replace(self._password, "***")
        return _USERINFO_PASSWORD.sub(r"\1@", message)

    def _transaction(self):
        return self._db.transaction()

    def _schema_transaction(self):
        transaction = self._db.transaction()

        class _Locked:
            def __enter__(inner):
                transaction.__enter__()
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
                return inner

            def __exit__(inner, *exc_info):
                return transaction.__exit__(*exc_info)

        return _Locked()

    def _insert_many(self, statement: str, rows: Sequence[tuple]) -> list[int]:
        ids: list[int] = []
        with self._db.cursor() as cursor:
            cursor.executemany(statement, rows, returning=True)  # pipelined: one round trip, not one per row
            while True:
                ids.append(int(cursor.fetchone()[0]))
                if not cursor.nextset():
                    break
        return ids

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
