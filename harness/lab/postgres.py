"""A private PostgreSQL cluster in a directory, on a loopback port: the lab's results database.

Used by the harness's own tests (a real server, started and stopped by the tests: CI has
nothing running) and by anyone who wants a lab database on one machine::

    with PostgresCluster(Path("/tmp/lab-db")) as cluster:      # initdb on first use, pg_ctl start
        url = cluster.create_database("results")               # postgresql://harness@127.0.0.1:PORT/results
        ...                                                     # --store <url>
                                                                # pg_ctl stop (fast) on exit

Layout of `directory`: ``data/`` (the cluster, kept across starts), ``postgres.log``.
A throw-away cluster (`private_cluster`) also records its owning process in ``OWNERS_DIR``:
one whose owner was SIGKILLed is stopped and deleted by the next `private_cluster`.

- Binaries: ``$HARNESS_PG_BINDIR``, else the directory of an ``initdb`` on PATH, else the
  newest ``/usr/lib/postgresql/<version>/bin`` (Debian/Ubuntu), else ``/usr/pgsql-*/bin``.
- The server listens on 127.0.0.1 only (no Unix socket), on `port` or a free port picked at start.
- initdb and the server refuse to run as root: as root, they run as the OS user ``postgres``
  when it exists, else as ``harness-pg`` (created once, a system user without a login shell).
  `directory` and its parents must be reachable by that user (a fresh directory under /tmp is).
- Authentication: with `password`, SCRAM for the superuser `user`; without, trust on the
  loopback address (any local user may connect: fine for tests, give a password otherwise).
- The encoding is UTF8 and the locale C.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.lab.sshd import LabError, free_port

BINDIR_ENV = "HARNESS_PG_BINDIR"
SERVICE_USER = "harness-pg"
START_TIMEOUT_S = 60


def find_bindir() -> Path:
    """The directory holding initdb, pg_ctl and postgres; LabError saying what to install."""
    candidates: list[Path] = []
    if os.environ.get(BINDIR_ENV):
        candidates.append(Path(os.environ[BINDIR_ENV]))
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(path: Path) -> tuple:
        digits = "".join(c if c.isdigit() or c == "." else " " for c in path.parent.name).split()
        return tuple(int(p) for p in digits[0].split(".") if p) if digits else ()

    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin"):
        candidates += sorted((p for p in Path("/").glob(pattern.lstrip("/"))), key=version, reverse=True)
    for candidate in candidates:
        if all((candidate / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return candidate
    where = f"${BINDIR_ENV}" if os.environ.get(BINDIR_ENV) else "PATH or /usr/lib/postgresql/*/bin"
    raise LabError(f"PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in {where}: "
                   f"install them (apt-get install postgresql) or set {BINDIR_ENV}")


def _service_account() -> pwd.struct_passwd:
    """The unprivileged OS user the server runs as when we are root."""
    for name in ("postgres", SERVICE_USER):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    nologin = shutil.which("nologin") or "/bin/false"
    made = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                           "--shell", nologin, "--comment", "edge-harness private PostgreSQL", SERVICE_USER],
                          capture_output=True, text=True)
    if made.returncode != 0 and "already exists" not in made.stderr:
        raise LabError(f"cannot create the OS user {SERVICE_USER} for PostgreSQL (initdb refuses root): "
                       f"{made.stderr.strip() or made.returncode}")
    return pwd.getpwnam(SERVICE_USER)


@dataclass
class PostgresCluster:
    directory: Path
    port: int = 0  # 0: a free loopback port, picked at each start
    user: str = "harness"  # the database superuser
    password: str | None = None
    bindir: Path | None = None
    settings: Mapping[str, str] = field(default_factory=dict)  # extra postgresql.conf lines
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).resolve()
        self.bindir = Path(self.bindir) if self.bindir else find_bindir()
        self._tools: Path = self.bindir  # bindir, known to be set from here on
        self.data_dir = self.directory / "data"
        self.log_file = self.directory / "postgres.log"
        self._account = _service_account() if os.geteuid() == 0 else None

    # --- what to connect to ------------------------------------------------------------------
    @property
    def os_user(self) -> str:
        return self._account.pw_name if self._account else pwd.getpwuid(os.geteuid()).pw_name

    def url(self, database: str = "postgres") -> str:
        """The database's URL, without the password (pass it in PGPASSWORD or ~/.pgpass)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def _connect(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               dbname=database, autocommit=True, connect_timeout=10)

    # --- running tools as the cluster's OS user ----------------------------------------------
    def _run(self, argv: list[str], check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        kwargs: dict[str, Any] = {}
        if self._account is not None:
            kwargs = {"user": self._account.pw_uid, "group": self._account.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        done = subprocess.run(argv, cwd=self.directory, env=env, capture_output=True, text=True,
                              timeout=timeout, **kwargs)
        if check and done.returncode != 0:
            raise LabError(f"PostgreSQL in {self.directory}: `{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''}` "
                           f"failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}"
                           + (f"; server log: {self.log_file}" if self.log_file.exists() else ""))
        return done

    def _prepare_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._account is not None:
            os.chown(self.directory, self._account.pw_uid, self._account.pw_gid)
            os.chmod(self.directory, 0o700)
            reach = self._run(["/bin/sh", "-c", 'test -w "$0" && test -x "$0"', str(self.directory)], check=False)
            if reach.returncode != 0:
                raise LabError(f"PostgreSQL in {self.directory}: the OS user {self.os_user} cannot reach this "
                               "directory (a parent is private): use one under /tmp or /var/lib")

    def initdb(self) -> None:
        """Create the cluster in data/ (nothing to do when it is there)."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._prepare_directory()
        argv = [str(self._tools / "initdb"), "-D", str(self.data_dir), "-U", self.user, "-E", "UTF8",
                "--no-locale", "--no-sync"]
        pwfile = self.directory / "initdb.pw"
        if self.password is not None:
            pwfile.write_text(self.password + "\n")
            if self._account is not None:
                os.chown(pwfile, self._account.pw_uid, self._account.pw_gid)
            os.chmod(pwfile, 0o600)
            argv += ["--pwfile", str(pwfile), "--auth-host=scram-sha-256", "--auth-local=scram-sha-256"]
        else:
            argv += ["--auth-host=trust", "--auth-local=trust"]
        try:
            self._run(argv)
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# edge-harness: listen address and port are in harness.conf, rewritten at each start\n"
                       "include_if_exists = 'harness.conf'\n")

    # --- start / stop --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run([str(self._tools / "pg_ctl"), "status", "-D", str(self.data_dir)], check=False).returncode == 0

    def start(self) -> PostgresCluster:
        """initdb if needed, then start the server and wait until it accepts connections."""
        self.initdb()
        if self.running:
            raise LabError(f"PostgreSQL in {self.directory} is already running: stop it first "
                           f"(pg_ctl stop -D {self.data_dir})")
        fixed = self.port != 0
        for _attempt in range(1 if fixed else 3):
            if not fixed:
                self.port = free_port(self.host)
            lines = {"listen_addresses": f"'{self.host}'", "port": str(self.port), "unix_socket_directories": "''",
                     **self.settings}
            conf = self.data_dir / "harness.conf"
            conf.write_text("".join(f"{key} = {value}\n" for key, value in lines.items()))
            if self._account is not None:
                os.chown(conf, self._account.pw_uid, self._account.pw_gid)
            done = self._run([str(self._tools / "pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_file),
                              "-w", "-t", str(START_TIMEOUT_S)], check=False, timeout=START_TIMEOUT_S + 30)
            if done.returncode == 0:
                return self
            log_tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            if fixed or "could not bind" not in log_tail:  # only a lost race for the port is retried
                break
        raise LabError(f"PostgreSQL in {self.directory} did not start on {self.host}:{self.port}: "
                       f"{(done.stderr or done.stdout).strip()[-400:]}; server log: {self.log_file}")

    def stop(self) -> None:
        """Stop the server (fast: open sessions are ended); nothing to do when it is down."""
        if not self.running:
            return
        pg_ctl = str(self._tools / "pg_ctl")
        done = self._run([pg_ctl, "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30"], check=False)
        if done.returncode != 0 and self.running:
            self._run([pg_ctl, "stop", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30"])

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- databases -----------------------------------------------------------------------------
    def create_database(self, name: str) -> str:
        """Create database `name` (once) and return its URL (without the password)."""
        from psycopg import sql

        with self._connect() as db:
            exists = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists is None:
                db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        from psycopg import sql

        with self._connect() as db:
            db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


OWNERS_DIR = Path(tempfile.gettempdir()) / "harness-pg-owners"
"""Where each throw-away cluster says which process owns it: ``<cluster dir name>.json`` with
the directory and the owner's pid and start time. A SIGKILLed owner cannot stop its cluster;
the next `private_cluster` finds it here and does (`sweep_orphaned_clusters`)."""


def _process_start(pid: int) -> str | None:
    """The start time (clock ticks after boot) of a live process, None when there is none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def sweep_orphaned_clusters(progress: Callable[[str], None] | None = None) -> list[Path]:
    """Stop and delete every throw-away cluster whose owning process is gone; returns their
    directories. A cluster whose owner still runs (another test run) is left alone."""
    swept = []
    for record in sorted(OWNERS_DIR.glob("*.json")) if OWNERS_DIR.is_dir() else ():
        try:
            owner = json.loads(record.read_text())
            directory, pid, start = Path(owner["directory"]), int(owner["pid"]), str(owner["start"])
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)  # unreadable: nothing to go by
            continue
        if _process_start(pid) == start:
            continue
        if (directory / "data" / "PG_VERSION").exists():
            with contextlib.suppress(LabError, OSError, subprocess.SubprocessError):
                PostgresCluster(directory).stop()
        shutil.rmtree(directory, ignore_errors=True)
        record.unlink(missing_ok=True)
        swept.append(directory)
        if progress is not None:
            progress(f"stopped the PostgreSQL cluster in {directory}: its owner (pid {pid}) is gone")
    return swept


@contextlib.contextmanager
def private_cluster(password: str | None = None, settings: Mapping[str, str] | None = None,
                    prefix: str = "harness-pg-") -> Iterator[PostgresCluster]:
    """A throw-away cluster in a fresh directory under the system temp dir: started on
    entry, stopped and deleted on exit (also when the body raises). The clusters earlier
    owners left running when they were killed are stopped first."""
    sweep_orphaned_clusters()
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    OWNERS_DIR.mkdir(mode=0o700, exist_ok=True)
    record = OWNERS_DIR / f"{directory.name}.json"
    record.write_text(json.dumps({"directory": str(directory), "pid": os.getpid(),
                                  "start": _process_start(os.getpid())}))
    cluster = None
    try:
        cluster = PostgresCluster(directory, password=password, settings=dict(settings or {}))
        cluster.start()
        yield cluster
    finally:
        try:
            if cluster is not None:
                cluster.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            record.unlink(missing_ok=True)

