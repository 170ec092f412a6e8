"""Pairing two runs' records by (target, model, variant, metric): what can be compared, and
what cannot (with the side and why), so that no key is silently dropped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.records import MeasurementRecord

# How the two sides are named in reasons and in stored verdicts (report.json's "side"): the
# reference run is "baseline" there, after the --baseline option that names it.
REFERENCE_SIDE = "baseline"
CANDIDATE_SIDE = "candidate"

@dataclass(frozen=True)
class Pair:
    """The same (target, model, variant, metric) measured in the reference and candidate runs."""

    target: str
    model: str
    variant: str
    metric: str
    reference: MeasurementRecord
    candidate: MeasurementRecord

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.target, self.model, self.variant, self.metric)


@dataclass(frozen=True)
class MissingPair:
    """A key that cannot be compared: absent, failed or sample-less on `side`."""

    target: str
    model: str
    variant: str
    metric: str
    side: str  # REFERENCE_SIDE ("baseline") | CANDIDATE_SIDE ("candidate") | "both"
    reason: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.target, self.model, self.variant, self.metric)


def _unusable(record: MeasurementRecord | None, side: str) -> str | None:
    if record is None:
        return f"not measured in the {side} run"
    if record.status != "ok":
        return f"failed in the {side} run: {record.meta.get('error', 'measurement failed')}"
    if not record.samples:
        return f"no raw samples stored in the {side} run"
    return None


def pair_runs(reference_records: Iterable[MeasurementRecord], candidate_records: Iterable[MeasurementRecord],
              metric: str | None = "latency") -> tuple[list[Pair], list[MissingPair]]:
    """Pair two runs' records by (target, model, variant, metric); metric None pairs all.

    Every key seen on either side ends up in exactly one list: `pairs` (usable on both
    sides) or `missing` (with the side and why: not measured, failed, no samples). If a run
    holds a key twice (a re-measurement), the later record (higher id) is used.
    """
    def index(records: Iterable[MeasurementRecord]) -> dict[tuple[str, str, str, str], MeasurementRecord]:
        out: dict[tuple[str, str, str, str], MeasurementRecord] = {}
        for record in records:
            if metric is not None and record.metric != metric:
                continue
            key = (record.target, record.model, record.variant, record.metric)
            previous = out.get(key)
            if previous is None or (record.id or 0) >= (previous.id or 0):
                out[key] = record
        return out

    ref = index(reference_records)
    cand = index(candidate_records)
    pairs: list[Pair] = []
    missing: list[MissingPair] = []
    for key in sorted(set(ref) | set(cand)):
        ref_problem = _unusable(ref.get(key), REFERENCE_SIDE)
        cand_problem = _unusable(cand.get(key), CANDIDATE_SIDE)
        if ref_problem is None and cand_problem is None:
            pairs.append(Pair(*key, reference=ref[key], candidate=cand[key]))
        elif ref_problem is not None and cand_problem is not None:
            missing.append(MissingPair(*key, side="both", reason=f"{ref_problem}; {cand_problem}"))
        elif ref_problem is not None:
            missing.append(MissingPair(*key, side=REFERENCE_SIDE, reason=ref_problem))
        else:
            missing.append(MissingPair(*key, side=CANDIDATE_SIDE, reason=str(cand_problem)))
    return pairs, missing
