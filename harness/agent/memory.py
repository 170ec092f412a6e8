"""Process memory from /proc/self/status (Linux); None where it cannot be read."""


def read_status_kb(fields=("VmHWM", "VmRSS")):
    # type: (tuple) -> dict
    """Return {field: kibibytes} for the given /proc/self/status fields that exist."""
    found = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in fields:
                    found[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return found


def memory_snapshot():
    # type: () -> dict
    """Peak and current resident set size in bytes: {"peak_rss": .., "rss": ..}."""
    kb = read_status_kb()
    snapshot = {}
    if "VmHWM" in kb:
        snapshot["peak_rss"] = kb["VmHWM"] * 1024
    if "VmRSS" in kb:
        snapshot["rss"] = kb["VmRSS"] * 1024
    return snapshot


def _memory_cgroup_dir():
    # type: () -> str
    """This process's memory cgroup directory (v1 controller or v2 unified), or ""."""
    try:
        with open("/proc/self/cgroup") as handle:
            lines = handle.read().splitlines()
    except (OSError, IOError):
        return ""
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and "memory" in parts[1].split(","):
            return "/sys/fs/cgroup/memory" + parts[2]
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0" and parts[1] == "":
            return "/sys/fs/cgroup" + parts[2]
    return ""


def _read_int(path):
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except (OSError, IOError):
        return None
    if text == "max":
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def oom_kills(oom_control_path):
    # type: (str) -> object
    """The oom_kill counter of a cgroup v1 memory.oom_control or v2 memory.events file."""
    try:
        with open(oom_control_path) as handle:
            for line in handle:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, IOError, ValueError):
        pass
    return None


def memory_cgroup():
    # type: () -> dict
    """The memory limit this process runs under, and where its OOM kills are counted, so
    the host can tell "killed for memory" from any other SIGKILL after the process is gone."""
    directory = _memory_cgroup_dir()
    if not directory:
        return {}
    limit = _read_int(directory + "/memory.limit_in_bytes")
    if limit is None:
        limit = _read_int(directory + "/memory.max")
    if limit is not None and limit >= (1 << 60):  # v1 "unlimited" is a huge page-rounded number
        limit = None
    counter = directory + "/memory.oom_control"
    try:
        open(counter).close()
    except (OSError, IOError):
        counter = directory + "/memory.events"
    return {"path": directory, "limit_bytes": limit, "oom_counter_file": counter, "oom_kills": oom_kills(counter)}
