"""Output agreement between a variant and its baseline: pure numpy, no I/O.

Both ran on the same seeded, structured inputs. Agreement is judged three ways:
- relative error: ||variant - baseline|| over the mean distance between the baseline's own
  outputs for different inputs, so "0.05" means the variant moves its outputs a twentieth
  as much as changing the input does (cosine alone hides that on near-constant outputs);
- cosine similarity and max absolute error, per input;
- top-1 / top-5 agreement along the last axis (classes, or characters per position).
The baseline must itself be meaningful: its outputs (and top-1) must differ across inputs,
otherwise any variant "agrees" and the check proves nothing.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

from harness.analysis.fidelity_settings import FidelitySettings
from harness.analysis.verdict import Verdict

FIDELITY_SEED_BASE = 1000  # latency uses seed 0, PTQ calibration 10000+


def fidelity_seeds(count: int) -> list[int]:
    return list(range(FIDELITY_SEED_BASE, FIDELITY_SEED_BASE + count))


def decode_outputs(per_seed: Sequence[Sequence[dict[str, Any]]]) -> list[list[np.ndarray]]:
    """The agent's encoded tensors back into arrays: [input][output] -> ndarray."""
    decoded = []
    for tensors in per_seed:
        arrays = []
        for tensor in tensors:
            data = base64.b64decode(tensor["data_b64"])
            arrays.append(np.frombuffer(data, dtype=np.dtype(tensor["dtype"]).newbyteorder("<"))
                          .reshape(tensor["shape"]))
        decoded.append(arrays)
    return decoded


def _flat(outputs: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(o, dtype=np.float64).ravel() for o in outputs])


def _primary_logits(outputs: Sequence[np.ndarray]) -> np.ndarray | None:
    """The first output as rows of class scores (last axis), if it looks like a classifier."""
    primary = np.asarray(outputs[0], dtype=np.float64)
    if primary.ndim == 0 or primary.shape[-1] < 2:
        return None
    return primary.reshape(-1, primary.shape[-1])


def baseline_spread(baseline: Sequence[Sequence[np.ndarray]]) -> float:
    """Mean L2 distance between the baseline's outputs for different inputs."""
    flats = [_flat(o) for o in baseline]
    distances = [float(np.linalg.norm(a - b)) for a, b in combinations(flats, 2)]
    return float(np.mean(distances)) if distances else 0.0


def baseline_diversity(baseline: Sequence[Sequence[np.ndarray]]) -> dict[str, Any]:
    """How much the baseline's outputs move across inputs (is agreement meaningful?)."""
    spread = baseline_spread(baseline)
    logits = [_primary_logits(o) for o in baseline]
    distinct_top1 = None
    present = [rows for rows in logits if rows is not None]
    if len(present) == len(logits):
        distinct_top1 = len({tuple(np.argmax(rows, axis=-1).tolist()) for rows in present})
    scale = float(np.mean([np.linalg.norm(_flat(o)) for o in baseline])) if baseline else 0.0
    meaningful = spread > 1e-6 * max(scale, 1e-12) and (distinct_top1 is None or distinct_top1 >= 2)
    return {"inputs": len(baseline), "spread": spread, "output_norm": scale,
            "distinct_top1": distinct_top1, "meaningful": bool(meaningful)}


def fidelity_metrics(baseline: Sequence[Sequence[np.ndarray]], variant: Sequence[Sequence[np.ndarray]]
                     ) -> dict[str, Any]:
    """Agreement of `variant` with `baseline` (same inputs, same order)."""
    if len(baseline) != len(variant):
        raise ValueError(f"{len(variant)} variant outputs for {len(baseline)} baseline inputs")
    base_shapes = [tuple(np.shape(o)) for o in baseline[0]]
    var_shapes = [tuple(np.shape(o)) for o in variant[0]]
    if base_shapes != var_shapes:
        return {"comparable": False, "reason": f"output shapes differ: variant {var_shapes} vs baseline {base_shapes}"}
    diversity = baseline_diversity(baseline)
    spread = diversity["spread"]
    cosines, max_abs, relative = [], [], []
    top1_hits = top5_hits = positions = 0
    classifier = True
    for base_out, var_out in zip(baseline, variant, strict=True):
        b, v = _flat(base_out), _flat(var_out)
        if not (np.all(np.isfinite(v))):
            relative.append(float("inf"))
            cosines.append(float("nan"))
            max_abs.append(float("inf"))
        else:
            denominator = float(np.linalg.norm(b) * np.linalg.norm(v))
            cosines.append(float(np.dot(b, v) / denominator) if denominator > 0 else float("nan"))
            max_abs.append(float(np.max(np.abs(b - v))) if b.size else 0.0)
            relative.append(float(np.linalg.norm(b - v)) / spread if spread > 0 else float("inf"))
        base_logits, var_logits = _primary_logits(base_out), _primary_logits(var_out)
        if base_logits is None or var_logits is None:
            classifier = False
            continue
        base_top1 = np.argmax(base_logits, axis=-1)
        top1_hits += int(np.sum(base_top1 == np.argmax(var_logits, axis=-1)))
        k = min(5, var_logits.shape[-1])
        var_top5 = np.argsort(-var_logits, axis=-1)[:, :k]
        top5_hits += int(np.sum(np.any(var_top5 == base_top1[:, None], axis=-1)))
        positions += len(base_top1)
    finite_cos = [c for c in cosines if np.isfinite(c)]
    return {
        "comparable": True,
        "inputs": len(baseline),
        "relative_error_mean": float(np.mean(relative)),
        "relative_error_max": float(np.max(relative)),
        "cosine_min": float(min(finite_cos)) if finite_cos else None,
        "cosine_mean": float(np.mean(finite_cos)) if finite_cos else None,
        "max_abs_error": float(np.max(max_abs)),
        "top1_agreement": top1_hits / positions if classifier and positions else None,
        "top5_agreement": top5_hits / positions if classifier and positions else None,
        "baseline": diversity,
    }


def settings_from_meta(stored: Mapping[str, Any] | None) -> FidelitySettings:
    """FidelitySettings as stored with a record (defaults for keys an old record lacks)."""
    known = {f for f in FidelitySettings.__dataclass_fields__}
    return FidelitySettings(**{k: v for k, v in (stored or {}).items() if k in known})


def fidelity_verdict(target: str, variant_id: str, summary: Mapping[str, Any], settings: FidelitySettings
                     ) -> Verdict:
    """Pass or fail against the variant's fidelity settings."""
    if summary.get("baseline_only") and summary.get("baseline_not_run"):
        return Verdict("no-budget", f"{target}: {variant_id}: agreement not checked: {summary['baseline_not_run']}; "
                       "measured alone")
    if summary.get("baseline_only"):
        diversity = summary["baseline"]
        if not diversity["meaningful"]:
            return Verdict("error", f"{target}: {variant_id}: baseline outputs do not change across "
                           f"{diversity['inputs']} inputs (distinct top-1: {diversity['distinct_top1']}), so no "
                           "variant's agreement with it would mean anything")
        return Verdict("pass", f"{target}: {variant_id} (baseline) outputs differ across {diversity['inputs']} inputs "
                       f"(distinct top-1: {diversity['distinct_top1']}): agreement with it is meaningful")
    if not summary.get("comparable", False):
        return Verdict("fail", f"{target}: {variant_id}: {summary.get('reason', 'outputs not comparable')}")
    if not summary["baseline"]["meaningful"]:
        return Verdict("error", f"{target}: {variant_id}: the baseline's outputs do not change across inputs, "
                       "so agreement proves nothing (check the baseline model and its input spec)")
    problems = []
    top1 = summary.get("top1_agreement")
    if top1 is not None and top1 < settings.min_top1_agreement:
        problems.append(f"top-1 agreement {top1:.1%} < {settings.min_top1_agreement:.1%}")
    top5 = summary.get("top5_agreement")
    if top5 is not None and settings.min_top5_agreement is not None and top5 < settings.min_top5_agreement:
        problems.append(f"top-5 agreement {top5:.1%} < {settings.min_top5_agreement:.1%}")
    if summary["relative_error_mean"] > settings.max_relative_error:
        problems.append(f"mean relative error {summary['relative_error_mean']:.3g} > {settings.max_relative_error:.3g}")
    cosine = summary.get("cosine_min")
    if settings.min_cosine is not None and (cosine is None or cosine < settings.min_cosine):
        problems.append(f"cosine {cosine if cosine is None else f'{cosine:.4f}'} < {settings.min_cosine}")
    shown = ((f"top-1 {top1:.1%}, " if top1 is not None else "")
             + f"mean relative error {summary['relative_error_mean']:.3g}")
    if problems:
        return Verdict("fail", f"{target}: {variant_id} outputs disagree with its baseline: {'; '.join(problems)} "
                       f"on {summary['inputs']} inputs: wrong outputs, whatever its speed")
    return Verdict("pass", f"{target}: {variant_id} agrees with its baseline ({shown} on {summary['inputs']} inputs)")
