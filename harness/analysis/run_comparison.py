"""A candidate run against a stored reference run (the one ``--baseline`` names): pair,
decide, per metric.

Every (target, model, variant, metric) of either run gets exactly one `RunVerdict`; keys
that cannot be compared (not measured, failed, no samples, sensor unavailable) have status
"missing" with the side and the reason (``regression.pair_runs``), never dropped.

How each metric is decided (its value, samples and threshold: ``metric_rules``):

- latency: ``regression.decide`` on the raw per-iteration samples (statistic: p50), with
  ``run_sd`` estimated from the label's history (``regression.estimate_run_sd`` over the
  per-run p50s, runs carrying a noise or drift warning left out), the default when the
  history is shorter than 4 clean runs;
- power: ``decide`` on the sensor's samples inside the timed load window (statistic: mean
  power), ``run_sd`` from the history of mean load power;
- memory (peak RSS) and fidelity (top-1 agreement, else minimum cosine): one number per
  run, so there are no samples to test. The ratio is called against the threshold; its ci
  and p-value come from the run-to-run sd of the label's history when there is one (4+
  runs), and are None (said in the reason) when there is not.

The pairs decided on samples are decided together (``regression.batch.decide_all``: what
``decide`` gives for each, faster). How each verdict is worded: ``run_verdicts``.

Which run ``--baseline`` names is ``harness.analysis.run_spec``'s. Reads the store; the
decisions themselves are ``harness.analysis.regression``'s (pure).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.analysis.metric_rules import RULES, comparable, threshold_for, with_samples
from harness.analysis.paired import reference_run_ratio
from harness.analysis.regression import (
    CANDIDATE_SIDE,
    DEFAULT_ALPHA,
    DEFAULT_RUN_SD,
    DEFAULT_THRESHOLD,
    REFERENCE_SIDE,
    Pair,
    estimate_run_sd,
    pair_runs,
)
from harness.analysis.regression.batch import decide_all
from harness.analysis.run_spec import resolve_complete_run
from harness.analysis.run_verdicts import (
    Key,
    RunVerdict,
    SampledPair,
    missing_verdict,
    paired_run_verdict,
    single_value_verdict,
    unpaired,
)
from harness.errors import HarnessError
from harness.records import MeasurementRecord, RunInfo
from harness.store import Store

__all__ = ["Comparer", "RunComparison", "RunVerdict", "compare_runs"]

HISTORY_RUNS = 12  # runs of the label read to estimate the run-to-run noise (4 is the minimum)


@dataclass(frozen=True)
class RunComparison:
    """Every key of two runs: verdicts in (target, model, variant, metric) order."""

    reference_run: RunInfo
    candidate_run_id: str
    verdicts: tuple[RunVerdict, ...]
    note: str = ""  # how the reference run was chosen (latest:nightly = run ...)
    history_label: str | None = None
    history_runs: int = 0

    @property
    def missing(self) -> list[RunVerdict]:
        return [v for v in self.verdicts if v.status == "missing"]

    @property
    def regressions(self) -> list[RunVerdict]:
        return [v for v in self.verdicts if v.status == "regression"]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for verdict in self.verdicts:
            out[verdict.status] = out.get(verdict.status, 0) + 1
        return out

    def for_target(self, target: str) -> list[RunVerdict]:
        return [v for v in self.verdicts if v.target == target]

    def summary_line(self) -> str:
        counts = self.counts()
        compared = sum(n for status, n in counts.items() if status != "missing")
        parts = [f"{counts[s]} {s}" for s in ("regression", "improvement", "no change", "inconclusive")
                 if counts.get(s)]
        text = f"{compared} compared" + (f": {', '.join(parts)}" if parts else "")
        if counts.get("missing"):
            text += f"; {counts['missing']} missing pair(s)"
        return text

    def as_dict(self) -> dict[str, Any]:
        reference = self.reference_run  # stored under the "baseline_*" keys report.json has always had
        return {"baseline_run": reference.id, "baseline_label": reference.label,
                "baseline_started_at": reference.started_at, "baseline_git_sha": reference.git_sha,
                "candidate_run": self.candidate_run_id, "note": self.note, "counts": self.counts(),
                "history_label": self.history_label, "history_runs": self.history_runs,
                "verdicts": [v.as_dict() for v in self.verdicts]}


class Comparer:
    """Compares records of a candidate run with a reference run, reading the reference run's
    records and the label's history once (a pytest session compares test by test)."""

    def __init__(self, store: Store, reference_run: RunInfo, *, candidate_run_id: str | None = None,
                 history_label: str | None = None, default_threshold: float = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA, history_runs: int = HISTORY_RUNS, note: str = "") -> None:
        self.store = store
        self.reference_run = reference_run
        self.candidate_run_id = candidate_run_id
        self.history_label = history_label if history_label is not None else reference_run.label
        self.default_threshold = default_threshold
        self.alpha = alpha
        self.history_limit = history_runs
        self.note = note
        self._reference_records: list[MeasurementRecord] | None = None
        self._history: dict[Key, list[float | None]] | None = None
        self._history_count = 0

    # --- what is read once --------------------------------------------------------------
    @property
    def reference_records(self) -> list[MeasurementRecord]:
        if self._reference_records is None:
            self._reference_records = [r for r in self.store.measurements(self.reference_run.id) if comparable(r)]
        return self._reference_records

    def history(self) -> dict[Key, list[float | None]]:
        """Per key, the per-run values of the label's last runs, oldest first (None where a
        run has no clean value): the series ``estimate_run_sd`` reads."""
        if self._history is None:
            runs = []
            if self.history_label:
                runs = [r for r in self.store.runs(label=self.history_label, limit=self.history_limit + 1)
                        if r.id != self.candidate_run_id][: self.history_limit]
            runs.reverse()
            series: dict[Key, list[float | None]] = {}
            index_of = {run.id: index for index, run in enumerate(runs)}
            # one query, summaries only: a run's value is in its summary, and decoding the raw
            # samples of 12 runs was most of the time a comparison spent reading; the reference
            # run (usually the label's newest) is read once, for the pairs
            ids = [run.id for run in runs]
            others = [run_id for run_id in ids if run_id != self.reference_run.id]
            found = self.store.measurements_of_runs(others) if others else []
            if len(others) < len(ids):
                found = [*found, *self.reference_records]
            for record in found:
                if not comparable(record) or record.status != "ok":
                    continue
                value = RULES[record.metric].value(record)
                clean = not record.summary.get("warnings") if record.metric == "latency" else True
                key = (record.target, record.model, record.variant, record.metric)
                column = series.setdefault(key, [None] * len(runs))
                column[index_of[record.run_id]] = float(value) if value is not None and clean and value > 0 else None
            self._history = series
            self._history_count = len(runs)
        return self._history

    def run_sd(self, key: Key) -> tuple[float | None, str]:
        values = self.history().get(key, [])
        clean = [v for v in values if v is not None]
        estimate = estimate_run_sd(values) if len(clean) >= 4 else None
        label = self.history_label or "(no label)"
        if estimate is None:
            return None, f"{len(clean)} clean run(s) of label {label}, need 4"
        return estimate, f"from {len(clean)} runs of label {label}"

    # --- deciding -----------------------------------------------------------------------
    def _decide(self, pair: Pair) -> RunVerdict | SampledPair:
        """The pair's verdict, or what decide is asked for it (decided with the others)."""
        rule = RULES[pair.metric]
        threshold = threshold_for(pair.candidate, threshold_for(pair.reference, self.default_threshold))
        unpaired_why = ""
        if pair.metric == "latency":
            ratio, unpaired_why = reference_run_ratio(pair.candidate.meta, self.reference_run.id)
            if ratio is not None:
                return paired_run_verdict(pair, rule, ratio, threshold)
        run_sd, source = self.run_sd(pair.key)
        if rule.samples is None:
            verdict = single_value_verdict(pair, rule, threshold, run_sd, source, self.alpha)
            return unpaired(verdict, unpaired_why)
        used_sd = run_sd if run_sd is not None else DEFAULT_RUN_SD
        if run_sd is None:
            source = f"default {DEFAULT_RUN_SD:.0%}: {source}"
        options = dict(threshold=threshold, alpha=self.alpha, statistic=rule.statistic,
                       higher_is_worse=rule.higher_is_worse, run_sd=used_sd)
        return SampledPair(pair, rule, threshold, used_sd, source, unpaired_why, options)

    def reference_record(self, target: str, model: str, variant: str, metric: str) -> MeasurementRecord | None:
        """The reference run's record of this key (the latest, if measured twice)."""
        found = [r for r in self.reference_records
                 if (r.target, r.model, r.variant, r.metric) == (target, model, variant, metric)]
        return max(found, key=lambda r: r.id or 0) if found else None

    def compare(self, candidate_records: Iterable[MeasurementRecord],
                keys: set[Key] | None = None) -> list[RunVerdict]:
        """Verdicts for every key of either side (restricted to `keys` when given)."""
        why: dict[tuple[Key, str], str] = {}

        def prepared(records: Iterable[MeasurementRecord], side: str) -> list[MeasurementRecord]:
            out = []
            for record in records:
                if not comparable(record):
                    continue
                key = (record.target, record.model, record.variant, record.metric)
                if keys is not None and key not in keys:
                    continue
                record, problem = with_samples(record)
                if problem:
                    why[key, side] = problem
                out.append(record)
            return out

        pairs, missing = pair_runs(prepared(self.reference_records, REFERENCE_SIDE),
                                   prepared(candidate_records, CANDIDATE_SIDE), metric=None)
        planned = [self._decide(pair) for pair in pairs]
        asked = [p for p in planned if isinstance(p, SampledPair)]
        # the pairs with samples decided together: decide_all gives what decide gives, faster
        decisions = iter(decide_all([(p.pair.reference.samples, p.pair.candidate.samples, p.options) for p in asked]))
        verdicts = [p.verdict(next(decisions)) if isinstance(p, SampledPair) else p for p in planned]
        verdicts += [missing_verdict(m, why) for m in missing]
        return sorted(verdicts, key=lambda v: v.key)

    def verdict(self, record: MeasurementRecord) -> RunVerdict | None:
        """The verdict on one freshly measured record (None: a metric with nothing to compare)."""
        if not comparable(record):
            return None
        key = (record.target, record.model, record.variant, record.metric)
        found = self.compare([record], keys={key})
        return found[0] if found else None

    def comparison(self, candidate_run_id: str,
                   candidate_records: Sequence[MeasurementRecord] | None = None) -> RunComparison:
        """The comparison of the candidate run; `candidate_records`: its measurements, when the
        caller has read them already (the run report), else they are read here."""
        records = self.store.measurements(candidate_run_id) if candidate_records is None else candidate_records
        verdicts = self.compare(records)
        return RunComparison(self.reference_run, candidate_run_id, tuple(verdicts), note=self.note,
                             history_label=self.history_label, history_runs=self._history_count)


def compare_runs(store: Store, candidate_run_id: str, reference: str | RunInfo, *,
                 default_threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
                 history_runs: int = HISTORY_RUNS,
                 candidate_records: Sequence[MeasurementRecord] | None = None) -> RunComparison | None:
    """The candidate run against the `reference` run (a RunInfo, or a run spec resolved
    relative to the candidate); None when a `latest[:LABEL]` spec finds no earlier run.
    `candidate_records`: the candidate's measurements, when the caller has read them."""
    candidate = store.get_run(candidate_run_id)
    if candidate is None:
        raise HarnessError(f"no run '{candidate_run_id}' in {store.url}; `harness runs` lists the stored runs")
    if isinstance(reference, RunInfo):
        run: RunInfo | None = reference
        note = f"run {reference.id}"
    else:
        run, note = resolve_complete_run(store, reference, before=candidate.started_at, exclude=(candidate.id,))
    if run is None:
        return None
    comparer = Comparer(store, run, candidate_run_id=candidate.id, history_label=run.label or candidate.label,
                        default_threshold=default_threshold, alpha=alpha, history_runs=history_runs, note=note)
    return comparer.comparison(candidate.id, candidate_records)
