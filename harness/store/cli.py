"""`harness store migrate|info`: the results store from the command line.

    harness store migrate [--store URL]       bring the store's schema up to this harness's version
    harness store info    [--store URL] [--json]   backend, schema version, how much it holds

`--store` takes what the pytest option takes: a path, sqlite:///PATH, or
postgresql://USER@HOST:PORT/DBNAME (default: .harness/results.sqlite in the current
directory). `add_store_commands(subparsers)` registers them on the `harness` parser; each
sets ``func`` (args -> exit status). Failures are StoreErrors (HarnessError): the main entry
point prints the one-line message. Nothing printed ever carries a password.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _store_url(args: argparse.Namespace) -> str:
    from harness.store import DEFAULT_STORE

    return args.store or str(Path.cwd() / DEFAULT_STORE)


def cmd_store_migrate(args: argparse.Namespace) -> int:
    from harness.store import open_store

    store = open_store(_store_url(args), migrate=True)
    try:
        if store.migrated_from is None:
            print(f"{store.url}: schema version {store.schema_version}, up to date")
        else:
            print(f"{store.url}: migrated from schema version {store.migrated_from} to {store.schema_version}")
    finally:
        store.close()
    return 0


def cmd_store_info(args: argparse.Namespace) -> int:
    from harness.store import open_store

    store = open_store(_store_url(args))
    try:
        info = dict(store.info())
    finally:
        store.close()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key in ("backend", "url", "schema_version", "runs", "measurements", "latest_run"):
        print(f"{key + ':':<16}{info[key] if info[key] is not None else '-'}")
    return 0


def add_store_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `store migrate|info` on the `harness` subparsers; returns the `store` parser."""
    store = subparsers.add_parser("store", help="the results store (SQLite file or PostgreSQL database)")
    actions = store.add_subparsers(dest="action", required=True)
    store_help = "a path, sqlite:///PATH or postgresql://USER@HOST:PORT/DBNAME (default: .harness/results.sqlite)"

    migrate = actions.add_parser("migrate", help="bring the store's schema up to this harness's version")
    migrate.add_argument("--store", default=None, help=store_help)
    migrate.set_defaults(func=cmd_store_migrate)

    info = actions.add_parser("info", help="backend, schema version and size of the store")
    info.add_argument("--store", default=None, help=store_help)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_store_info)
    return store
