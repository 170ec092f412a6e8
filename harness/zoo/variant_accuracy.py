"""Build-time top-1 accuracy of each built demo file: the agent's own accuracy job, run here.

The zoo build measures a variant the way the fidelity suite measures it on a target: it starts
`python -m harness.agent` (in the build's interpreter, or the Paddle Lite one for a `.nb`) with
an accuracy job on the test split's image set (harness.agent.accuracy), with the runtime
options the manifest gives that variant (RUNTIME_OPTIONS). The same code, file and images on
the target must then give the same count of correct images, or the difference is the
runtime's (another build, another CPU's kernels), which the report shows side by side.

FLAGS_enable_pir_api is removed from the agent's environment: a target's agent runs without it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from harness.zoo.steps import StepFailed

_IMPORT_ROOT = Path(__file__).resolve().parents[2]

#: runtime -> the options the manifest (suites/models.yaml) runs it with; int8 paddle adds precision.
RUNTIME_OPTIONS: dict[str, dict[str, Any]] = {
    "paddle-inference": {"threads": 1, "mkldnn": True},
    "onnxruntime": {"threads": 1, "graph_optimization": "all"},
    "paddle-lite": {},
}


def measure(python: str, runtime: str, files: dict[str, str], shape: list[int], image_set: str,
            options: dict[str, Any] | None = None, step: str = "accuracy") -> dict[str, Any]:
    """Top-1 of the model `files` on `image_set`, by the agent under `python`: a build-info entry."""
    options = dict(RUNTIME_OPTIONS[runtime] if options is None else options)
    job = {"protocol": 1, "job_id": "zoo-accuracy", "kind": "accuracy",
           "runtime": {"name": runtime, "options": options},
           "model": {"files": {role: os.path.abspath(path) for role, path in files.items()}},
           "input": {"name": "x", "shape": list(shape), "dtype": "float32", "seed": 0},
           "accuracy": {"file": os.path.abspath(image_set)}, "timeout_s": 600}
    env = {k: v for k, v in os.environ.items() if k != "FLAGS_enable_pir_api"}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([str(_IMPORT_ROOT), *paths])
    try:
        done = subprocess.run([python, "-m", "harness.agent"], input=json.dumps(job).encode(), capture_output=True,
                              timeout=900, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StepFailed(step, "harness.agent accuracy job", f"{python}: {exc}") from None
    events = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    result = next((e for e in events if e.get("event") == "result"), None)
    if result is None:
        error: dict[str, Any] = next((e for e in events if e.get("event") == "error"), {})
        raise StepFailed(step, "harness.agent accuracy job",
                         f"{runtime} on {os.path.basename(files['model'])}: {error.get('message') or done.returncode}")
    counts = result["accuracy"]
    return {"correct": counts["correct"], "count": counts["count"],
            "top1": round(counts["correct"] / counts["count"], 6),
            "images": f"digits test split ({os.path.basename(image_set)})",
            "runtime": runtime, "runtime_version": result["runtime"].get("version"), "options": options,
            "measured_by": "harness.agent accuracy job, at build time, on the build machine"}
