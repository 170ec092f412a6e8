"""The interpreters installed on the lab's devices: each device's "vendor image", built on the host.

Interpreters (`harness.lab.devices.PythonEnv`) are either used as they are (`venv=False`: a
path on this machine, which every device sees because namespaces share the filesystem) or
built by the lab on the host as a virtual environment with pinned wheels: the devices have no
internet, so this is their "vendor image". Built environments are cached under
``<cache_dir>/envs/<name>-<key>/`` (key = base interpreter + packages + platform) and reused
across `up`/`down` cycles; a ``.complete`` file written last marks a finished build, so an
interrupted one is redone.

Wheels for an interpreter other than the host's are fetched by the host's pip for the
device's Python version / ABI / platform (`pip download --only-binary=:all: --python-version
36 ...`) into ``<cache_dir>/wheels/`` and unpacked into the environment with ``pip install
--target`` (the device interpreter needs no pip of its own; Python 3.6's pip is too old for
manylinux2014 wheels anyway), then byte-compiled by the device interpreter.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.lab.devices import PythonEnv
from harness.lab.progress import Progress
from harness.lab.sshd import LabError
from harness.streamed import run_streamed


@dataclass(frozen=True)
class BuiltEnv:
    """An interpreter ready on this machine. ``complete`` is False for a bare environment made
    without its packages (``install=False`` and nothing cached)."""

    name: str
    python: str
    version: str
    complete: bool
    path: str | None = None


def resolve_base(env: PythonEnv) -> str:
    """The base interpreter's absolute path; a clear error if it is not installed."""
    if env.base.startswith("pyenv:"):
        version = env.base.split(":", 1)[1]
        pyenv = shutil.which("pyenv") or os.path.expanduser("~/.pyenv/bin/pyenv")
        prefix = None
        if os.path.exists(pyenv):
            done = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True)
            if done.returncode == 0:
                prefix = done.stdout.strip()
        short = ".".join(version.split(".")[:2])
        candidates = [os.path.join(prefix, "bin", f"python{short}")] if prefix else []
        candidates.append(shutil.which(f"python{short}") or "")
        for candidate in candidates:
            if candidate and os.path.exists(candidate):
                return candidate
        raise LabError(f"{env.name}: Python {version} not found: install it (pyenv install {version}) "
                       f"so that `pyenv prefix {version}` works")
    if not os.path.isabs(env.base) or not os.path.exists(env.base):
        raise LabError(f"{env.name}: interpreter {env.base} not found (make envs creates the project venvs)")
    return env.base


def _interpreter_facts(python: str) -> dict[str, str]:
    code = ("import sys, platform; print(sys.version.split()[0]); print(getattr(sys, 'abiflags', '')); "
            "print(platform.machine())")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=_clean_env())
    if done.returncode != 0:
        raise LabError(f"{python} does not run: {done.stderr.strip()[-300:]}")
    version, abiflags, machine = done.stdout.splitlines()[:3]
    return {"version": version, "abiflags": abiflags, "machine": machine}


def _clean_env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def env_key(env: PythonEnv, base: str) -> str:
    text = json.dumps({"base": os.path.realpath(base), "packages": list(env.packages)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def env_dir(env: PythonEnv, cache_dir: Path) -> Path:
    """Where `build_env` puts ``env`` (packages or not: a bare env has its own key)."""
    return Path(cache_dir) / "envs" / f"{env.name}-{env_key(env, resolve_base(env))}"


def cached_env(env: PythonEnv, cache_dir: Path) -> BuiltEnv | None:
    """The finished environment if it is already in the cache (never builds)."""
    if not env.venv:
        base = resolve_base(env)
        return BuiltEnv(env.name, base, _interpreter_facts(base)["version"], True)
    directory = env_dir(env, cache_dir)
    marker = directory / ".complete"
    if not marker.exists():
        return None
    facts = json.loads(marker.read_text())
    return BuiltEnv(env.name, str(directory / "bin" / "python"), facts["version"], True, str(directory))


def build_env(env: PythonEnv, cache_dir: Path, progress: Progress = print, install: bool = True) -> BuiltEnv:
    """The environment for ``env``, from the cache or built now (with progress lines).

    With ``install=False`` a missing environment is made bare (the interpreter, no packages:
    seconds instead of a download) and returned with ``complete=False``.
    """
    found = cached_env(env, cache_dir)
    if found is not None:
        if env.venv:
            progress(f"  image {env.name}: cached at {found.path} (Python {found.version})")
        return found
    if not install and env.packages:
        bare = PythonEnv(name=f"{env.name}-bare", base=env.base, packages=(), venv=True)
        progress(f"  image {env.name}: not cached and package installs skipped: a bare Python venv "
                 f"without {', '.join(p.split('==')[0] for p in env.packages)}")
        built = build_env(bare, cache_dir, progress, install=False)
        return BuiltEnv(env.name, built.python, built.version, False, built.path)
    cache_dir = Path(cache_dir)
    (cache_dir / "envs").mkdir(parents=True, exist_ok=True)
    with open(cache_dir / "envs" / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another `lab up` or test building the same image
        found = cached_env(env, cache_dir)
        if found is not None:
            return found
        return _build_locked(env, cache_dir, progress)


def _build_locked(env: PythonEnv, cache_dir: Path, progress: Progress) -> BuiltEnv:
    started = time.monotonic()
    base = resolve_base(env)
    facts = _interpreter_facts(base)
    directory = env_dir(env, cache_dir)
    if directory.exists():
        shutil.rmtree(directory)  # an interrupted build
    progress(f"  image {env.name}: creating a Python {facts['version']} venv from {base}")
    _run([base, "-m", "venv", "--without-pip", str(directory)], f"{env.name}: python -m venv", progress)
    python = directory / "bin" / "python"
    if env.packages:
        major, minor = facts["version"].split(".")[:2]
        site = directory / "lib" / f"python{major}.{minor}" / "site-packages"
        cross = ["--only-binary=:all:", "--python-version", f"{major}{minor}", "--implementation", "cp",
                 "--abi", f"cp{major}{minor}{facts['abiflags']}",
                 "--platform", f"manylinux2014_{facts['machine']}"]
        wheels = cache_dir / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        progress(f"  image {env.name}: fetching wheels for cp{major}{minor} {facts['machine']}: "
                 f"{' '.join(env.packages)} (into {wheels}; reused next time)")
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        _run([*pip, "download", "--progress-bar", "off", *cross, "-d", str(wheels), *env.packages],
             f"{env.name}: pip download", progress, echo=True)
        progress(f"  image {env.name}: installing into {site}")
        _run([*pip, "install", "--no-index", "--find-links", str(wheels), "--no-compile", "--no-warn-conflicts",
              "--progress-bar", "off", *cross, "--target", str(site), *env.packages],
             f"{env.name}: pip install", progress, echo=True)
        progress(f"  image {env.name}: byte-compiling with Python {facts['version']}")
        subprocess.run([str(python), "-m", "compileall", "-q", str(site)], capture_output=True, env=_clean_env())
    if env.check:
        progress(f"  image {env.name}: checking: {env.check}")
        done = subprocess.run([str(python), "-c", env.check], capture_output=True, text=True, env=_clean_env())
        if done.returncode != 0:
            raise LabError(f"{env.name}: the built environment fails its check ({env.check}): "
                           f"{done.stderr.strip()[-400:]}")
        progress(f"  image {env.name}: ok: {done.stdout.strip()}")
    _make_readable(directory)
    (directory / ".complete").write_text(json.dumps({"version": facts["version"], "base": base,
                                                     "packages": list(env.packages)}))
    progress(f"  image {env.name}: built in {time.monotonic() - started:.0f}s")
    return BuiltEnv(env.name, str(python), facts["version"], True, str(directory))


def _make_readable(directory: Path) -> None:
    """Device users (not root) must read and run the image."""
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)
    os.chmod(directory, 0o755)


def _run(argv: list[str], what: str, progress: Progress, echo: bool = False) -> None:
    """Run a build step, streaming its output as progress lines when ``echo``."""
    def on_line(line: str) -> None:
        if echo and not line.startswith("WARNING: Location"):
            progress(f"    {line}")

    finished = run_streamed(argv, on_line, keep=4)
    if finished.returncode != 0:
        raise LabError(f"{what} failed (exit {finished.returncode}): {' | '.join(finished.lines)}")


__all__ = ["BuiltEnv", "build_env", "cached_env", "env_dir", "env_key", "resolve_base"]
