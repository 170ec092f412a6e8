"""A foreign-architecture Debian root filesystem for an emulated lab device (qemu-user + binfmt).

The lab's ARM device is a real arm64 userland: Debian's own arm64 packages (bash, python3,
openssh-server, libc) unpacked by ``debootstrap --arch=arm64`` and run on this x86_64
machine through the kernel's binfmt_misc handler for aarch64 ELF files, which hands them to
``qemu-aarch64`` (qemu-user-static). The handler must be registered with the ``F`` (fix
binary) flag: the kernel then opens the emulator when it is registered, so it also works for
programs inside a chroot, where the emulator's path does not exist.

`build_rootfs` runs debootstrap once (about 3-5 minutes and ~300 MB from Debian's mirror,
most of it configuring packages under emulation) into ``<cache>/rootfs/<name>-<key>.partial``,
checks that the python3 inside reports the expected machine, and renames it into place with
a ``.harness-rootfs.json`` marker; a finished root filesystem is reused by every later
`lab up`. The root filesystem is never written by a device: the lab mounts it read-only in
the device's own mount namespace, with the device's home, /tmp, /proc, /dev and /sys mounted
over it (see `harness.lab.chroot`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.lab.progress import Progress
from harness.lab.sshd import LabError
from harness.streamed import Finished, run_streamed

MARKER = ".harness-rootfs.json"
PROGRESS_EVERY_S = 10.0
INSTALL_HINT = "apt-get install -y qemu-user-static binfmt-support debootstrap"
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


@dataclass(frozen=True)
class RootfsSpec:
    """What to debootstrap. ``machine`` is what ``platform.machine()`` reports inside."""

    arch: str = "arm64"
    machine: str = "aarch64"
    suite: str = "bookworm"
    variant: str = "minbase"
    include: tuple[str, ...] = ("python3", "openssh-server")
    mirror: str = "http://deb.debian.org/debian"

    @property
    def qemu_handler(self) -> str:
        """The binfmt_misc entry (as binfmt-support names it) that runs this architecture."""
        return f"qemu-{self.machine}"

    def key(self) -> str:
        data = json.dumps({k: v for k, v in asdict(self).items() if k != "mirror"}, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:12]

    @property
    def dirname(self) -> str:
        return f"debian-{self.suite}-{self.arch}-{self.key()}"


ARM64_BOOKWORM = RootfsSpec()


def rootfs_dir(spec: RootfsSpec, cache_dir: Path) -> Path:
    return Path(cache_dir) / "rootfs" / spec.dirname


def cached_rootfs(spec: RootfsSpec, cache_dir: Path) -> Path | None:
    root = rootfs_dir(spec, cache_dir)
    return root if (root / MARKER).is_file() else None


def ensure_binfmt(spec: RootfsSpec, progress: Progress) -> None:
    """Make sure the kernel runs ``spec.machine`` binaries through qemu, also inside a chroot."""
    entry = BINFMT_DIR / spec.qemu_handler
    if not (BINFMT_DIR / "status").exists():
        done = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise LabError(f"cannot mount binfmt_misc on {BINFMT_DIR} ({done.stderr.strip()}): the emulated "
                           f"{spec.machine} device needs the kernel's binfmt_misc (a container may not allow it)")
        progress(f"lab: mounted binfmt_misc on {BINFMT_DIR}")
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        if shutil.which("update-binfmts") is None:
            raise LabError(f"no binfmt handler {spec.qemu_handler} and no update-binfmts: {INSTALL_HINT}")
        done = subprocess.run(["update-binfmts", "--enable", spec.qemu_handler], capture_output=True, text=True)
        if done.returncode != 0 or not entry.exists():
            why = done.stderr.strip() or "not installed"
            raise LabError(f"cannot enable the binfmt handler {spec.qemu_handler} ({why}): {INSTALL_HINT}")
        progress(f"lab: enabled the binfmt handler {spec.qemu_handler} ({spec.machine} programs run under qemu-user)")
    flags = next((line.split(":", 1)[1].strip() for line in entry.read_text().splitlines()
                  if line.startswith("flags:")), "")
    if "F" not in flags:
        raise LabError(f"{entry} is registered without the F (fix binary) flag (flags: {flags or 'none'}), so qemu "
                       "cannot run programs inside the device's chroot: install Debian's qemu-user-static "
                       "(it registers with F) and run `update-binfmts --enable " + spec.qemu_handler + "`")


def build_rootfs(spec: RootfsSpec, cache_dir: Path, progress: Progress = print) -> Path:
    """The root filesystem for ``spec``, debootstrapped on first use; raises LabError."""
    found = cached_rootfs(spec, cache_dir)
    if found is not None:
        progress(f"lab: {spec.arch} root filesystem kept: {found}")
        return found
    for tool in ("debootstrap", "chroot"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool} not found: the emulated {spec.machine} device needs it ({INSTALL_HINT})")
    ensure_binfmt(spec, progress)
    root = rootfs_dir(spec, cache_dir)
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; a second one reuses the first's result
        found = cached_rootfs(spec, cache_dir)
        if found is not None:
            return found
        return _debootstrap(spec, root, progress)


def _debootstrap(spec: RootfsSpec, root: Path, progress: Progress) -> Path:
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        progress(f"lab: removing an unfinished root filesystem build: {partial}")
        shutil.rmtree(partial)
    if root.exists():
        shutil.rmtree(root)
    argv = ["debootstrap", f"--arch={spec.arch}", f"--variant={spec.variant}", f"--include={','.join(spec.include)}",
            spec.suite, str(partial), spec.mirror]
    progress(f"lab: building the {spec.arch} root filesystem once ({spec.suite}, {', '.join(spec.include)}) from "
             f"{spec.mirror}: about 3-5 minutes and 300 MB; packages are configured under qemu emulation")
    progress(f"lab:   {' '.join(argv)}")
    started = time.monotonic()
    tail = _stream(argv, progress, started)
    if tail.returncode != 0:
        log = partial / "debootstrap" / "debootstrap.log"
        raise LabError(f"debootstrap failed (exit {tail.returncode}): {' | '.join(tail.lines[-3:])}"
                       + (f"; log: {log}" if log.exists() else "") + f"; needs {INSTALL_HINT} and Debian's mirror")
    facts = _probe(partial, spec)
    shutil.rmtree(partial / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    (partial / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    seconds = round(time.monotonic() - started, 1)
    marker = {"spec": asdict(spec), "built": time.strftime("%Y-%m-%dT%H:%M:%S"), "seconds": seconds, **facts}
    (partial / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    os.chmod(partial, 0o755)
    os.replace(partial, root)
    progress(f"lab: {spec.arch} root filesystem built in {seconds:.0f}s: {root} (python {facts['python']}, "
             f"machine {facts['machine']})")
    return root


def _stream(argv: list[str], progress: Progress, started: float) -> Finished:
    """Run debootstrap, passing on its phase changes and a heartbeat every few seconds."""
    seen: set[str] = set()
    last_said = 0.0

    def on_line(line: str) -> None:
        nonlocal last_said
        words = line.split()
        # a phase is debootstrap's verb (Retrieving, Extracting, Unpacking, Configuring, ...);
        # each package repeats it, so a phase is said when it starts, then every few seconds
        phase = _PHASE_ALIASES.get(words[1], words[1]) if words[:1] == ["I:"] and len(words) > 1 else line
        now = time.monotonic()
        if phase not in seen or now - last_said >= PROGRESS_EVERY_S:
            progress(f"lab:   [{now - started:5.0f}s] {line}")
            seen.add(phase)
            last_said = now

    return run_streamed(argv, on_line)


_PHASE_ALIASES = {"Validating": "Retrieving"}


def _probe(root: Path, spec: RootfsSpec) -> dict[str, str]:
    """Run the new root filesystem's python3 (emulated) and check what it says it runs on."""
    code = "import platform, sys; print(platform.machine()); print('%d.%d.%d' % sys.version_info[:3])"
    done = subprocess.run(["chroot", str(root), "/usr/bin/python3", "-c", code], capture_output=True, text=True,
                          timeout=300)
    out = done.stdout.split()
    if done.returncode != 0 or len(out) != 2:
        raise LabError(f"the new {spec.arch} root filesystem's python3 does not run under emulation "
                       f"(exit {done.returncode}: {done.stderr.strip()[-200:]}); check binfmt ({INSTALL_HINT})")
    machine, python = out
    if machine != spec.machine:
        raise LabError(f"the {spec.arch} root filesystem's python3 reports machine {machine!r}, not {spec.machine!r}")
    return {"machine": machine, "python": python}


def rootfs_facts(root: Path) -> dict[str, object]:
    """What the marker of a built root filesystem records (python version, machine, spec)."""
    return json.loads((Path(root) / MARKER).read_text())


__all__ = ["ARM64_BOOKWORM", "RootfsSpec", "build_rootfs", "cached_rootfs", "ensure_binfmt", "rootfs_dir",
           "rootfs_facts"]
