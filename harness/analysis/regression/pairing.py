"""Pairing two runs' records by (target, model, variant, metric): what can be compared, and
what cannot (with the side and why), so that no key is silently dropped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.records import MeasurementRecord


@dataclass(frozen=True)
class Pair:
    """The same (target, model, variant, metric) measured in the baseline and candidate runs."""

    target: str
    model: str
    variant: str
    metric: str
    baseline: MeasurementRecord
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
    side: str  # "baseline" | "candidate" | "both"
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


def pair_runs(baseline_records: Iterable[MeasurementRecord], candidate_records: Iterable[MeasurementRecord],
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

    base = index(baseline_records)
    cand = index(candidate_records)
    pairs: list[Pair] = []
    missing: list[MissingPair] = []
    for key in sorted(set(base) | set(cand)):
        base_problem = _unusable(base.get(key), "baseline")
        cand_problem = _unusable(cand.get(key), "candidate")
        if base_problem is None and cand_problem is None:
            pairs.append(Pair(*key, baseline=base[key], candidate=cand[key]))
        elif base_problem is not None and cand_problem is not None:
            missing.append(MissingPair(*key, side="both", reason=f"{base_problem}; {cand_problem}"))
        elif base_problem is not None:
            missing.append(MissingPair(*key, side="baseline", reason=base_problem))
        else:
            missing.append(MissingPair(*key, side="candidate", reason=str(cand_problem)))
    return pairs, missing
