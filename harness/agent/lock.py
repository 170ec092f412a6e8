"""The device side of the device lock: ``python -m <agent package>.lock PATH INFO_JSON WAIT_S``.

Takes an exclusive `flock` on PATH (created if missing, never deleted), retrying while
another holder has it. While waiting it prints one JSON line per second on stdout::

    {"event": "waiting", "holder": {...contents of PATH.info, or null...}}

Once it holds the lock it writes INFO_JSON (with "since" added, the device's UTC time) to
PATH.info, prints ``{"event": "locked"}`` and then blocks reading stdin. It exits, and so
releases the lock, when stdin reaches EOF: the orchestrator closed it, or the orchestrator
died and sshd closed the session (a SIGHUP ends it the same way). The kernel drops a flock
when its holder exits however it exits, so a killed holder never leaves the device locked;
its PATH.info stays behind, stale, and the next holder overwrites it.

After WAIT_S seconds without the lock it prints ``{"event": "timeout", "holder": ...}`` and
exits 3. Errors (cannot open PATH, bad arguments) print ``{"event": "error", "message": ...}``
and exit 2.

Stdlib only, Python 3.6 compatible (it runs on JetPack 4 boards).
"""

import errno
import fcntl
import json
import os
import sys
import time

POLL_S = 0.1
REPORT_EVERY_S = 1.0
EXIT_TIMEOUT = 3
EXIT_ERROR = 2


def emit(event, **fields):
    # type: (str, object) -> None
    fields["event"] = event
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def read_holder(info_path):
    # type: (str) -> object
    """What PATH.info says about the holder: a dict, or None if absent or unreadable."""
    try:
        with open(info_path, "r") as handle:
            holder = json.loads(handle.read())
    except (OSError, IOError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def write_holder(info_path, info):
    # type: (str, dict) -> None
    temporary = "%s.tmp-%d" % (info_path, os.getpid())
    with open(temporary, "w") as handle:
        handle.write(json.dumps(info, sort_keys=True))
    os.rename(temporary, info_path)  # readers never see half a file


def utc_now():
    # type: () -> str
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def try_lock(fd):
    # type: (int) -> bool
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except (OSError, IOError) as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


def wait_for_eof():
    # type: () -> None
    stdin = sys.stdin.fileno()
    while True:
        try:
            if not os.read(stdin, 65536):
                return
        except (OSError, IOError) as exc:
            if exc.errno == errno.EINTR:
                continue
            return


def main(argv):
    # type: (list) -> int
    if len(argv) != 3:
        emit("error", message="usage: python -m <agent>.lock PATH INFO_JSON WAIT_S")
        return EXIT_ERROR
    path, info_text, wait_text = argv
    try:
        info = json.loads(info_text)
        wait_s = float(wait_text)
    except ValueError as exc:
        emit("error", message="bad argument: %s" % exc)
        return EXIT_ERROR
    if not isinstance(info, dict):
        emit("error", message="INFO_JSON must be a JSON object")
        return EXIT_ERROR
    info_path = path + ".info"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except (OSError, IOError) as exc:
        emit("error", message="cannot open lock file %s: %s" % (path, exc.strerror))
        return EXIT_ERROR

    deadline = time.time() + max(0.0, wait_s)
    next_report = 0.0
    try:
        while not try_lock(fd):
            now = time.time()
            if now >= deadline:
                emit("timeout", holder=read_holder(info_path))
                return EXIT_TIMEOUT
            if now >= next_report:
                emit("waiting", holder=read_holder(info_path))
                next_report = now + REPORT_EVERY_S
            time.sleep(min(POLL_S, max(0.0, deadline - now)))
        info.setdefault("since", utc_now())
        info["lock_pid"] = os.getpid()
        try:
            write_holder(info_path, info)
        except (OSError, IOError) as exc:
            emit("error", message="cannot write %s: %s" % (info_path, exc.strerror))
            return EXIT_ERROR
        emit("locked")
        wait_for_eof()
        try:
            if read_holder(info_path) == info:
                os.remove(info_path)  # still ours (we hold the lock): nobody is holding now
        except (OSError, IOError):
            pass
        return 0
    except (OSError, IOError) as exc:
        if exc.errno == errno.EPIPE:
            return 1  # the orchestrator went away while we waited
        emit("error", message="device lock failed: %s" % exc)
        return EXIT_ERROR
    finally:
        os.close(fd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
