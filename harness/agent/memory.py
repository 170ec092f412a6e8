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
