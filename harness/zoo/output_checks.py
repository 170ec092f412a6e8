"""Does a converted demo variant still compute the fp32 net? Its outputs against the dygraph
net's on the same structured inputs (seeds CHECK_SEEDS), recorded in build-info (`check`).

Run in the demo build worker; numpy is imported when comparing.
"""

from __future__ import annotations

import math
from typing import Any

from harness.zoo.steps import StepFailed

CHECK_SEEDS = (0, 1, 2)
#: A converted fp32 model is accepted when ||out - ref|| / ||ref|| stays below this on every
#: check input (measured: paddle2onnx 3e-7, Lite x86 4e-7).
FP32_TOLERANCE = 1e-3


def relative_errors(reference: list[Any], outputs: list[Any]) -> dict[str, Any]:
    """How far `outputs` are from `reference` (same inputs), JSON-safe (non-finite -> None)."""
    import numpy as np

    ref = [np.asarray(r, dtype=np.float64).ravel() for r in reference]
    out = [np.asarray(o, dtype=np.float64).ravel() for o in outputs]
    finite = all(np.all(np.isfinite(o)) for o in out)
    shapes_match = len(ref) == len(out) and all(r.shape == o.shape for r, o in zip(ref, out, strict=True))
    result: dict[str, Any] = {"inputs": f"structured, seeds {CHECK_SEEDS[0]}-{CHECK_SEEDS[-1]}",
                              "finite": bool(finite), "shapes_match": bool(shapes_match)}
    spread = float(np.linalg.norm(ref[1] - ref[0])) / max(float(np.linalg.norm(ref[0])), 1e-30)
    result["fp32_spread"] = round(spread, 6)  # how much fp32 itself moves between two inputs
    if not (finite and shapes_match):
        result.update(relative_error=None, max_abs_error=None, top1_agreement=None)
        with np.errstate(all="ignore"):
            result["non_finite_values"] = int(sum(int(np.sum(~np.isfinite(o))) for o in out))
            finite_abs = [np.abs(o[np.isfinite(o)]) for o in out]
            result["max_abs_finite_output"] = _json_float(max((float(a.max()) for a in finite_abs if a.size),
                                                              default=0.0))
            result["max_abs_reference"] = _json_float(max(float(np.max(np.abs(r))) for r in ref))
        return result
    with np.errstate(all="ignore"):
        rel = [float(np.linalg.norm(o - r)) / max(float(np.linalg.norm(r)), 1e-30)
               for r, o in zip(ref, out, strict=True)]
        abs_err = max(float(np.max(np.abs(o - r))) for r, o in zip(ref, out, strict=True))
    result["relative_error"] = _json_float(max(rel))
    result["max_abs_error"] = _json_float(abs_err)
    agree = sum(int(np.argmax(r) == np.argmax(o)) for r, o in zip(ref, out, strict=True))
    result["top1_agreement"] = round(agree / len(ref), 4)
    return result


def _json_float(value: float) -> float | None:
    """`value` to 6 significant digits, or None when it is not finite (JSON has no NaN)."""
    return float(f"{value:.6g}") if math.isfinite(value) else None


def require_close(step: str, tool: str, what: str, check: dict[str, Any]) -> None:
    """Fail `step` unless `check` (relative_errors) shows the fp32 net reproduced within FP32_TOLERANCE."""
    rel = check.get("relative_error")
    if rel is None or rel > FP32_TOLERANCE:
        shown = "non-finite or mis-shaped outputs" if rel is None else f"relative error {rel:.3g}"
        raise StepFailed(step, tool, f"{what} does not reproduce the fp32 net: {shown} on structured "
                                     f"inputs (tolerance {FP32_TOLERANCE:g}); the conversion is wrong")
