"""The results schema, versioned. Both backends create exactly these tables.

Bump SCHEMA_VERSION with every change and add a migration step to MIGRATIONS: a store
opened with an older version is refused with a message pointing at `harness store migrate`.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

TABLES = (
    """CREATE TABLE IF NOT EXISTS schema_info (
        version INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        label TEXT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        status TEXT NOT NULL,
        host TEXT NOT NULL,
        harness_version TEXT NOT NULL,
        git_sha TEXT,
        git_dirty INTEGER,
        options TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS runs_by_label ON runs (label, started_at)",
    """CREATE TABLE IF NOT EXISTS environments (
        run_id TEXT NOT NULL REFERENCES runs(id),
        target TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (run_id, target)
    )""",
    """CREATE TABLE IF NOT EXISTS measurements (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(id),
        target TEXT NOT NULL,
        model TEXT NOT NULL,
        variant TEXT NOT NULL,
        metric TEXT NOT NULL,
        unit TEXT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL,
        meta TEXT NOT NULL,
        samples TEXT,
        samples_unit TEXT,
        recorded_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS measurements_by_run ON measurements (run_id, target)",
)

# version -> statements that bring a store from that version to version + 1
MIGRATIONS: dict[int, tuple[str, ...]] = {}
