"""A project for one test: target files and a manifest, written as YAML from Python values.

Tests used to paste YAML templates with doubled braces for ``str.format``; here a document
is a dict, so a test states only what it changes (a budget, a runtime option, a limit) and
the file is valid YAML whatever the values are (paths with spaces, ``{zoo}`` placeholders).
The loaders the tests exercise (harness.config) read these files exactly as a user's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from helpers.paths import REPO

QUICK_LATENCY: dict[str, Any] = {"warmup_iterations": 0, "warmup_duration": "0s", "min_iterations": 5,
                                 "min_duration": "0s", "max_duration": "120s"}
"""Latency settings of orchestration-only jobs: five iterations, no warm-up."""

NOOP_INPUT: dict[str, Any] = {"name": "x", "shape": [1], "dtype": "float32"}
TINY_CNN_INPUT: dict[str, Any] = {"name": "x", "shape": [1, 3, 64, 64], "dtype": "float32"}


def write_yaml(path: Path, document: Mapping[str, Any]) -> Path:
    """``document`` as YAML at ``path`` (keys in the order given); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(_plain(document), sort_keys=False))
    return path


def _plain(value: Any) -> Any:
    """Paths as strings, mappings and sequences rebuilt as dicts and lists: what safe_dump takes."""
    if isinstance(value, PathLike):
        return str(value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


# ----------------------------------------------------------------------------- manifests


def write_manifest(path: Path, models: Mapping[str, Mapping[str, Any]], *, latency: Mapping[str, Any] | None = None,
                   zoo: Path | str | None = None, **top: Any) -> Path:
    """A version 1 manifest: ``models`` as the manifest spells them (input, budgets, variants),
    ``latency`` as its defaults' latency settings, ``zoo`` as its zoo_dir."""
    document: dict[str, Any] = {"version": 1}
    if zoo is not None:
        document["zoo_dir"] = zoo
    if latency is not None:
        document["defaults"] = {"latency": dict(latency)}
    document.update(top)
    document["models"] = models
    return write_yaml(path, document)


def noop_variant(**extra: Any) -> dict[str, Any]:
    """A variant of the noop runtime (format none): the agent's job loop without a model.
    ``runtime_options`` such as ``sleep_us`` / ``spin_us`` give it a length."""
    return {"kind": "fp32", "format": "none", "runtime": "noop", **extra}


def noop_manifest(path: Path, variants: int | Sequence[str] = 1, duration: str = "0s", warmup: str = "0s",
                  max_duration: str = "120s", **variant: Any) -> Path:
    """A manifest of cheap no-op jobs (model ``noop``): orchestration only. ``variants``: how
    many (named v0, v1, ...) or their names.

    A long job is a long *warm-up*: the timed loop stops after 200000 iterations, which a
    no-op runs in well under a second, whatever min_duration says."""
    names = [f"v{i}" for i in range(variants)] if isinstance(variants, int) else list(variants)
    latency = {**QUICK_LATENCY, "warmup_duration": warmup, "min_duration": duration, "max_duration": max_duration}
    return write_manifest(path, {"noop": {"input": NOOP_INPUT, "variants": {name: noop_variant(**variant)
                                                                           for name in names}}}, latency=latency)


def tiny_cnn_paddle(build: str = "fp32", **extra: Any) -> dict[str, Any]:
    """A Paddle Inference variant of the demo zoo's tiny_cnn (``build``: its folder in the
    zoo, fp32 or int8), one thread; ``extra`` adds or replaces variant keys."""
    kind = "fp32" if build == "fp32" else "int8-ptq"
    return {"kind": kind, "format": "paddle", "runtime": "paddle-inference",
            "files": {"model": f"{{zoo}}/tiny_cnn/{build}/inference.pdmodel",
                      "params": f"{{zoo}}/tiny_cnn/{build}/inference.pdiparams"},
            "runtime_options": {"threads": 1}, **extra}


# ----------------------------------------------------------------------------- targets


def local_target(name: str = "box", *, workdir: Path | str, python: Path | str,
                 runtimes: Mapping[str, Path | str] | None = None, **fields: Any) -> dict[str, Any]:
    """A target file's fields for this machine through the local transport (an x86_64 CPU
    box): ``runtimes`` maps a runtime to its interpreter; ``fields`` adds limits, power, ..."""
    target: dict[str, Any] = {"name": name, "kind": "x86-cpu", "arch": "x86_64", "connection": {"transport": "local"},
                              "workdir": workdir, "python": python}
    if runtimes is not None:
        target["runtimes"] = dict(runtimes)
    target.update(fields)
    return target


def write_target(targets_dir: Path, target: Mapping[str, Any]) -> Path:
    """``targets_dir/<name>.yaml`` (the folder is created), as ``--targets-dir`` reads it."""
    return write_yaml(targets_dir / f"{target['name']}.yaml", target)


# ----------------------------------------------------------------------------- projects


def copy_suites(root: Path, suites: Sequence[str] = ("test_latency.py",), ini: str = "[pytest]\n") -> Path:
    """A throw-away project at ``root``: the repo's ``suites`` copied into root/suites and a
    pytest.ini, so that ``pytest suites/`` run there has the project as its rootdir (its own
    targets/, suites/models.yaml, .harness/ and reports/), as a user's project has."""
    (root / "suites").mkdir(parents=True, exist_ok=True)
    for suite in suites:
        (root / "suites" / suite).write_text((REPO / "suites" / suite).read_text())
    (root / "pytest.ini").write_text(ini)
    return root
