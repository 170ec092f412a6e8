"""Output agreement metrics on synthetic outputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from harness.agent.outputs import encode_tensor
from harness.analysis.fidelity import baseline_diversity, decode_outputs, fidelity_metrics, fidelity_verdict
from harness.analysis.fidelity_settings import FidelitySettings

RNG = np.random.default_rng(7)


def classifier_outputs(n_inputs: int = 16, classes: int = 10) -> list[list[np.ndarray]]:
    return [[RNG.normal(0, 3, size=(1, classes)).astype(np.float32)] for _ in range(n_inputs)]


def test_encoding_round_trips_every_dtype_and_layout() -> None:
    for array in (np.arange(12, dtype=np.float32).reshape(3, 4), np.arange(6, dtype=np.int64).reshape(2, 3).T,
                  np.array([[1.5, -2.0]], dtype=np.float64), np.arange(4, dtype=">f4")):
        (decoded,), = decode_outputs([[encode_tensor(array)]])
        np.testing.assert_array_equal(decoded, array)


def test_identical_outputs_agree_perfectly() -> None:
    base = classifier_outputs()
    metrics = fidelity_metrics(base, base)
    assert metrics["top1_agreement"] == 1.0 and metrics["relative_error_mean"] == 0.0
    assert metrics["cosine_min"] == pytest.approx(1.0)
    assert fidelity_verdict("t", "m-v", metrics, FidelitySettings()).status == "pass"


def test_small_noise_passes_and_wrong_outputs_fail() -> None:
    base = classifier_outputs()
    close = [[o[0] + RNG.normal(0, 0.01, size=o[0].shape).astype(np.float32)] for o in base]
    assert fidelity_verdict("t", "m-v", fidelity_metrics(base, close), FidelitySettings()).status == "pass"
    garbage = [[RNG.normal(0, 3, size=o[0].shape).astype(np.float32)] for o in base]
    metrics = fidelity_metrics(base, garbage)
    verdict = fidelity_verdict("t", "m-v", metrics, FidelitySettings())
    assert verdict.status == "fail"
    assert "top-1 agreement" in verdict.message and "wrong outputs" in verdict.message
    assert metrics["relative_error_mean"] > 0.5


def test_relative_error_is_normalised_by_the_baselines_own_spread() -> None:
    base = [[np.full((1, 4), float(i))] for i in range(4)]  # neighbours are 2.0 apart in L2
    shifted = [[o[0] + 0.1] for o in base]  # every output off by 0.2 in L2
    spread = np.mean([np.linalg.norm(np.full(4, float(i - j))) for i in range(4) for j in range(i + 1, 4)])
    metrics = fidelity_metrics(base, shifted)
    assert metrics["relative_error_mean"] == pytest.approx(0.2 / spread)


def test_a_constant_baseline_makes_agreement_meaningless() -> None:
    base = [[np.array([[0.1, 0.9, 0.0]], dtype=np.float32)] for _ in range(8)]
    assert baseline_diversity(base)["meaningful"] is False
    verdict = fidelity_verdict("t", "m-v", fidelity_metrics(base, base), FidelitySettings())
    assert verdict.status == "error" and "proves nothing" in verdict.message


def test_shape_mismatch_and_non_finite_outputs_fail() -> None:
    base = classifier_outputs(classes=10)
    other = classifier_outputs(classes=5)
    metrics = fidelity_metrics(base, other)
    assert metrics["comparable"] is False
    assert fidelity_verdict("t", "m-v", metrics, FidelitySettings()).status == "fail"
    nan = [[np.full_like(o[0], np.nan)] for o in base]
    assert fidelity_verdict("t", "m-v", fidelity_metrics(base, nan), FidelitySettings()).status == "fail"


def test_sequence_outputs_count_agreement_per_position() -> None:
    base = [[RNG.normal(0, 3, size=(1, 6, 20)).astype(np.float32)] for _ in range(4)]
    one_position_wrong = []
    for (o,) in base:
        changed = o.copy()
        changed[0, 0, :] = -changed[0, 0, :]  # flips the argmax of position 0 only
        one_position_wrong.append([changed])
    metrics = fidelity_metrics(base, one_position_wrong)
    assert metrics["top1_agreement"] == pytest.approx(5 / 6)
