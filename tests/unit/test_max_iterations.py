"""``max_iterations`` is a manifest latency setting (it was fixed at 200,000 in the agent)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.config.manifest import load_manifest
from harness.errors import ConfigError
from harness.run.measure import latency_job

REPO = Path(__file__).resolve().parents[2]
MANIFEST = """
version: 1
defaults:
  latency: {{warmup_iterations: 0, warmup_duration: 0s, min_iterations: {min_iterations}, min_duration: 60s,
             max_duration: 120s{extra}}}
models:
  noop:
    input: {{name: x, shape: [1], dtype: float32}}
    variants:
      v: {{kind: fp32, format: none, runtime: noop}}
"""


def _manifest(tmp_path: Path, min_iterations: int = 5, extra: str = "") -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(MANIFEST.format(min_iterations=min_iterations, extra=extra))
    return path


def test_max_iterations_from_the_manifest_stops_the_agents_timed_loop(tmp_path: Path) -> None:
    (variant,) = load_manifest(_manifest(tmp_path, extra=", max_iterations: 25")).variants
    assert variant.latency.max_iterations == 25
    job = latency_job(variant, {})
    assert job["latency"]["max_iterations"] == 25
    done = subprocess.run([sys.executable, "-m", "harness.agent"], input=json.dumps(job).encode(),
                          capture_output=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    result = [json.loads(line) for line in done.stdout.splitlines() if b'"result"' in line]
    assert result and result[0]["iterations"] == 25 and result[0]["stopped_by"] == "max-iterations", done.stderr


def test_the_default_stays_200000(tmp_path: Path) -> None:
    (variant,) = load_manifest(_manifest(tmp_path)).variants
    assert latency_job(variant, {})["latency"]["max_iterations"] == 200_000


@pytest.mark.parametrize("extra, min_iterations, needle", [
    (", max_iterations: 0", 5, "max_iterations"),
    (", max_iterations: 3", 5, "max_iterations (3) is below min_iterations (5)"),
    (", max_iterations: lots", 5, "max_iterations"),
])
def test_a_bad_max_iterations_names_the_key(tmp_path: Path, extra: str, min_iterations: int, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_manifest(_manifest(tmp_path, min_iterations, extra))
    assert needle in str(caught.value) and "defaults.latency.max_iterations" in str(caught.value), caught.value
