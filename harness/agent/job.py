"""Reading and checking a Job (protocol version 1) before anything heavy is imported."""

import json

from . import PROTOCOL_VERSION
from .accuracy import check_accuracy_job
from .protocol import AgentFailure

JOB_KINDS = ("latency", "memory", "fidelity", "power", "accuracy", "paired")

LATENCY_DEFAULTS = {
    "warmup_iterations": 10,
    "warmup_duration_s": 0.5,
    "min_iterations": 50,
    "min_duration_s": 2.0,
    "max_duration_s": 60.0,
    "max_iterations": 200000,
    "precision": 0,  # > 0: time until the percentiles' 95% intervals are within +-precision (precise.py)
    "percentiles": [50],
}


def parse_job(raw):
    # type: (bytes) -> dict
    """Decode and validate a Job; AgentFailure("protocol") names what is wrong."""
    try:
        job = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise AgentFailure("protocol", "job is not valid UTF-8 JSON: %s" % exc) from exc
    if not isinstance(job, dict):
        raise AgentFailure("protocol", "job must be a JSON object")
    version = job.get("protocol")
    if version != PROTOCOL_VERSION:
        raise AgentFailure(
            "protocol", "job speaks protocol %r but this agent speaks %d; push a matching agent"
            % (version, PROTOCOL_VERSION))
    for key, kind in (("runtime", dict), ("model", dict), ("input", dict)):
        if not isinstance(job.get(key), kind):
            raise AgentFailure("protocol", "job.%s must be an object" % key)
    if not isinstance(job["runtime"].get("name"), str):
        raise AgentFailure("protocol", "job.runtime.name must be a string")
    if not isinstance(job["model"].get("files", {}), dict):
        raise AgentFailure("protocol", "job.model.files must be an object of role -> path")
    shape = job["input"].get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape):
        raise AgentFailure("protocol", "job.input.shape must be a list of positive integers")
    latency = dict(LATENCY_DEFAULTS)
    latency.update(job.get("latency") or {})
    for key, value in latency.items():
        if key not in LATENCY_DEFAULTS:
            raise AgentFailure("protocol", "job.latency.%s is not a known setting" % key)
        if key == "percentiles":
            if not isinstance(value, list) or not value or not all(
                    isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < 100 for p in value):
                raise AgentFailure("protocol", "job.latency.percentiles must list percentiles between 0 and 100")
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise AgentFailure("protocol", "job.latency.%s must be a non-negative number" % key)
    job["latency"] = latency
    timeout = job.get("timeout_s", 0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
        raise AgentFailure("protocol", "job.timeout_s must be a non-negative number of seconds")
    kind = job.setdefault("kind", "latency")
    if kind not in JOB_KINDS:
        raise AgentFailure("protocol", "job.kind %r is not one of %s" % (kind, ", ".join(JOB_KINDS)))
    if kind == "paired":
        from .paired_job import check_paired

        check_paired(job)
    profile_ops = job.get("profile_ops", False)
    if not isinstance(profile_ops, bool):
        raise AgentFailure("protocol", "job.profile_ops must be true or false")
    if profile_ops and kind not in ("latency", "paired"):
        raise AgentFailure("protocol", "job.profile_ops is only for latency and paired jobs (got kind %r)" % kind)
    job["profile_ops"] = profile_ops
    if kind == "power":
        power = job.get("power")
        if not isinstance(power, dict) or not isinstance(power.get("sensor"), str):
            raise AgentFailure("protocol", "job.power must be an object with a sensor name")
    if kind == "fidelity":
        seeds = (job.get("fidelity") or {}).get("seeds")
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise AgentFailure("protocol", "job.fidelity.seeds must be a non-empty list of integers")
    if kind == "accuracy":
        check_accuracy_job(job)
    return job
