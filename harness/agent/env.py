"""What the device is: captured by the agent and sent in its `hello` event.

Only cheap, read-only sources (files under /proc, /sys, /etc and the platform module), so
capture adds milliseconds, not seconds, to each job. Extra files named by the target's
`env_capture` are read too (bounded in size).
"""

import os
import platform
import socket
import sys

from .memory import memory_cgroup

MAX_EXTRA_FILE_BYTES = 4096


def _read(path, limit=MAX_EXTRA_FILE_BYTES):
    # type: (str, int) -> str
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace").strip()
    except (OSError, IOError):
        return ""


def _cpu_model():
    # type: () -> str
    text = _read("/proc/cpuinfo", 1 << 20)
    for key in ("model name", "Hardware", "Model", "cpu model"):
        for line in text.splitlines():
            if line.startswith(key) and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# ISA extensions worth recording (x86 "flags" / ARM "Features" in /proc/cpuinfo), and those that
# accelerate int8 dot products: VNNI (AVX-512 or AVX), AMX, ARM dotprod (asimddp) and i8mm.
CPU_FLAGS_OF_INTEREST = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni",
                         "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp",
                         "asimdhp", "i8mm", "sve", "bf16")
INT8_DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def _isa_family(machine):
    # type: (str) -> str
    machine = machine.lower()
    if machine in ("x86_64", "amd64", "i386", "i686"):
        return "x86"
    if machine.startswith(("aarch64", "arm")):
        return "arm"
    return machine


def cpuinfo_is_the_hosts(machine, cpuinfo):
    # type: (str, str) -> bool
    """True when /proc/cpuinfo describes another architecture than the one this interpreter runs
    on: under qemu-user (an emulated device) the kernel's file is the host's, passed through."""
    lowered = cpuinfo.lower()
    if "vendor_id" in lowered or "\nflags" in "\n" + lowered:
        described = "x86"
    elif "cpu implementer" in lowered or "\nfeatures" in "\n" + lowered:
        described = "arm"
    else:
        return False  # nothing to tell by
    return described != _isa_family(machine)


def _cpu_flags():
    # type: () -> dict
    """{"source", "present": flags of interest found, "int8_dot_product": int8 accelerating ones};
    source None when /proc/cpuinfo has no flags line (then nothing is known)."""
    for line in _read("/proc/cpuinfo", 1 << 20).splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features") and value.strip():
            present = set(value.split())
            return {"source": "/proc/cpuinfo",
                    "present": [f for f in CPU_FLAGS_OF_INTEREST if f in present],
                    "int8_dot_product": [f for f in INT8_DOT_PRODUCT_FLAGS if f in present]}
    return {"source": None, "present": [], "int8_dot_product": []}


def _mem_total_bytes():
    for line in _read("/proc/meminfo", 1 << 16).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _os_name():
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def _governors():
    # type: () -> dict[str, str]
    found = {}  # type: dict[str, str]  # cpuN -> scaling governor
    base = "/sys/devices/system/cpu"
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("cpu") and n[3:].isdigit())
    except OSError:
        return found
    for name in names:
        governor = _read(os.path.join(base, name, "cpufreq", "scaling_governor"))
        if governor:
            found[name] = governor
    return found


def _glob_sorted(pattern):
    import glob

    return sorted(glob.glob(pattern))


def thermal_snapshot():
    # type: () -> dict
    """Temperatures, CPU frequencies and throttle counters: taken before and after a job so
    the host can see heating, frequency drops and throttling during the timed window."""
    temperatures = {}
    for zone in _glob_sorted("/sys/class/thermal/thermal_zone*"):
        raw = _read(os.path.join(zone, "temp"))
        if raw.lstrip("-").isdigit():
            name = _read(os.path.join(zone, "type")) or os.path.basename(zone)
            temperatures[name] = int(raw) / 1000.0
    frequencies = {}
    for cpu in _glob_sorted("/sys/devices/system/cpu/cpu[0-9]*"):
        raw = _read(os.path.join(cpu, "cpufreq", "scaling_cur_freq"))
        if raw.isdigit():
            frequencies[os.path.basename(cpu)] = int(raw)
    throttles = 0
    found_throttle = False
    for counter in _glob_sorted("/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle/*_throttle_count"):
        raw = _read(counter)
        if raw.isdigit():
            throttles += int(raw)
            found_throttle = True
    gpu = {}
    for devfreq in _glob_sorted("/sys/class/devfreq/*"):
        raw = _read(os.path.join(devfreq, "cur_freq"))
        if raw.isdigit():
            gpu[os.path.basename(devfreq)] = int(raw)
    return {"temperatures_c": temperatures, "cpu_freq_khz": frequencies,
            "throttle_count": throttles if found_throttle else None, "devfreq_hz": gpu}


def _affinity():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _run_command(argv, timeout=5):
    # type: (list, float) -> str
    """Output of an env-capture command (argv list, never a shell string), bounded."""
    import subprocess

    try:
        output = subprocess.check_output(argv, stderr=subprocess.STDOUT, timeout=timeout)
        return output[:MAX_EXTRA_FILE_BYTES].decode("utf-8", "replace").strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return "unavailable: %s" % exc


def capture(extra_files=(), extra_commands=()):
    # type: (tuple, tuple) -> dict
    """A dict of plain values describing this device and interpreter."""
    return {
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        # qemu-user passes the host's /proc/cpuinfo through: then model and flags are the host's
        "cpu_info_is_host": cpuinfo_is_the_hosts(platform.machine(), _read("/proc/cpuinfo", 1 << 20)),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": _affinity(),
        "mem_total_bytes": _mem_total_bytes(),
        "cpu_governors": _governors(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "memory_cgroup": memory_cgroup(),
        "cpu_max_freq_khz": _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") or None,
        "l4t_release": _read("/etc/nv_tegra_release") or None,
        "thermal": thermal_snapshot(),
        "files": dict((path, _read(path)) for path in extra_files),
        "commands": dict((" ".join(argv), _run_command(list(argv))) for argv in extra_commands),
    }
