"""The power summary of a run: idle and load means, and energy per inference.

    summary = summarize_run(sampler.stop(), inferences, latency_ms_mean)

Energy per inference = (load mean - idle mean) x mean latency; a window with fewer than
MIN_WINDOW_SAMPLES samples makes the status "insufficient samples" with the reason and
what to lengthen, and a sensor that could not measure gives "unavailable: <reason>",
never zeros.
"""

import math

MIN_WINDOW_SAMPLES = 3


def _mean(values):
    # type: (list[float]) -> float | None
    return sum(values) / len(values) if values else None


def _window(samples, markers, names):
    # type: (list[dict], dict[str, int], tuple[str, str]) -> tuple[int, int, list[dict]] | None
    """(begin_ns, end_ns, the samples between) for the markers `names`; None when one is missing."""
    begin, end = markers.get(names[0]), markers.get(names[1])
    if begin is None or end is None:
        return None
    return begin, end, [s for s in samples if begin <= s["t_ns"] <= end]


def _power_of(sample):
    # type: (dict) -> tuple[float | None, bool]
    """The board power a sample stands for, and whether it is only a lower bound."""
    if sample.get("total_w") is not None:
        return sample["total_w"], False
    lower = (sample.get("extra") or {}).get("rails_sum_w")
    if lower is not None:
        return lower, True
    return None, False


def _watts(samples):
    # type: (list[dict]) -> list[float]
    """The power of each of `samples` that has one (inside a window: all of them)."""
    return [watts for watts, _ in map(_power_of, samples) if watts is not None]


def _effective_rate_hz(samples):
    # type: (list[dict]) -> float | None
    if len(samples) < 2:
        return None
    span = samples[-1]["t_ns"] - samples[0]["t_ns"]
    return (len(samples) - 1) / (span / 1e9) if span > 0 else None


def _blank_summary(sensor):
    # type: (dict | None) -> dict
    sensor = sensor or {}
    estimated = bool(sensor.get("estimated"))
    return {
        "status": None,
        "reason": None,
        "sensor": sensor.get("sensor"),
        "estimated": estimated,
        "label": "estimated" if estimated else "measured",
        "basis": None,
        "lower_bound": bool(sensor.get("total_is_lower_bound")),
        "total_rail": sensor.get("total_rail"),
        "total_note": sensor.get("total_note"),
        "never_run_on_hardware": sensor.get("never_run_on_hardware"),
        "interval_s": sensor.get("interval_s"),
        "sample_rate_hz": None,
        "samples": 0,
        "idle_samples": 0,
        "idle_mean_w": None,
        "idle_window_s": None,
        "load_samples": 0,
        "load_mean_w": None,
        "load_peak_w": None,
        "load_window_s": None,
        "inferences": None,
        "latency_ms_mean": None,
        "energy_per_inference_mj": None,
        "energy_per_inference_gross_mj": None,
        "energy_per_inference_window_mj": None,
        "rails": {},
        "errors": 0,
        "notes": [],
    }


def unavailable_summary(reason, sensor=None):
    # type: (str, dict | None) -> dict
    """The summary of a power measurement that could not be made: status says why."""
    summary = _blank_summary(sensor)
    summary["status"] = "unavailable: %s" % reason
    summary["reason"] = reason
    return summary


def summarize_power(samples,                          # type: list[dict]
                    markers,                          # type: dict[str, int]
                    idle=("idle_begin", "idle_end"),  # type: tuple[str, str]
                    load=("load_begin", "load_end"),  # type: tuple[str, str]
                    inferences=None,                  # type: int | None
                    latency_ms_mean=None,             # type: float | None
                    sensor=None,                      # type: dict | None
                    errors=None,                      # type: list[dict] | None
                    min_samples=MIN_WINDOW_SAMPLES,   # type: int
                    ):
    # type: (...) -> dict
    """Idle and load power, and energy per inference = (load mean - idle mean) x mean latency.

    Means are plain sample means (sensors sample at a steady rate). Watts x milliseconds =
    millijoules. With `inferences` (the timed loop's iteration count) the same extra energy
    is also shared over the load window (energy_per_inference_window_mj): the two agree
    when the loop's own overhead is small. `sensor` is the sensor's describe(); `errors`
    the Sampler's errors.
    status: "ok", "insufficient samples" (fewer than `min_samples` in the load or idle
    window; `reason` says how many, the sensor's rate and what to lengthen), or
    "unavailable: <reason>" when no sample carries a power value at all.
    """
    summary = _blank_summary(sensor)
    samples = sorted(samples, key=lambda s: s["t_ns"])
    summary["samples"] = len(samples)
    summary["errors"] = len(errors or [])
    summary["inferences"] = inferences
    summary["latency_ms_mean"] = latency_ms_mean
    if any(s.get("estimated") for s in samples):
        summary["estimated"] = True
        summary["label"] = "estimated"
    rate = _effective_rate_hz(samples)
    if rate is None and summary["interval_s"]:
        rate = 1.0 / summary["interval_s"]
    summary["sample_rate_hz"] = rate

    powered = [s for s in samples if _power_of(s)[0] is not None]
    if samples and not powered:
        why = (samples[-1].get("extra") or {}).get("total_missing") or summary["total_note"]
        return _finish(summary, "unavailable: the sensor's samples carry no power value (%s)"
                       % (why or "no total and no rail sum"))
    if not samples:
        detail = "no samples were taken"
        if errors:
            detail += " (%d read errors; first: %s)" % (len(errors), errors[0].get("message"))
        summary["reason"] = detail
        return _finish(summary, "insufficient samples")
    lower_bound = summary["lower_bound"] or any(_power_of(s)[1] for s in powered)
    summary["lower_bound"] = lower_bound
    summary["basis"] = _basis(summary, lower_bound)

    load_window = _window(powered, markers, load)
    idle_window = _window(powered, markers, idle)
    problems = []
    if load_window is None:
        problems.append("no load window (markers %s/%s missing)" % load)
    else:
        begin, end, inside = load_window
        values = _watts(inside)
        summary["load_samples"] = len(values)
        summary["load_window_s"] = (end - begin) / 1e9
        summary["load_mean_w"] = _mean(values)
        summary["load_peak_w"] = max(values) if values else None
        if len(values) < min_samples:
            problems.append(_too_few("load", len(values), min_samples, end - begin, rate))
    if idle_window is None:
        problems.append("no idle window (markers %s/%s missing): idle power was not measured" % idle)
    else:
        begin, end, inside = idle_window
        values = _watts(inside)
        summary["idle_samples"] = len(values)
        summary["idle_window_s"] = (end - begin) / 1e9
        summary["idle_mean_w"] = _mean(values)
        if len(values) < min_samples:
            problems.append(_too_few("idle", len(values), min_samples, end - begin, rate))
    summary["rails"] = _rail_means(powered, load_window, idle_window)

    load_ok = summary["load_samples"] >= min_samples
    idle_ok = summary["idle_samples"] >= min_samples
    extra_w = summary["load_mean_w"] - summary["idle_mean_w"] if load_ok and idle_ok else None
    if latency_ms_mean is not None and load_ok:
        summary["energy_per_inference_gross_mj"] = summary["load_mean_w"] * latency_ms_mean
        if extra_w is not None:
            summary["energy_per_inference_mj"] = extra_w * latency_ms_mean
    if inferences and extra_w is not None:  # cross-check: the window's extra energy over its inferences
        summary["energy_per_inference_window_mj"] = extra_w * summary["load_window_s"] * 1000.0 / inferences
    if extra_w is not None and extra_w < 0:
        # a negative energy is not a number anyone should read: leave it out, say why
        summary["energy_per_inference_mj"] = None
        summary["energy_per_inference_window_mj"] = None
        summary["notes"].append("load mean is below idle mean: the model's power is within the sensor's "
                                "noise (or the idle window was disturbed); energy per inference is not reported")
    if lower_bound:
        summary["notes"].append("no board-total rail: powers are the sum of the listed rails, a lower bound")
    if len(powered) < len(samples):
        summary["notes"].append("%d sample(s) without a power value were left out"
                                % (len(samples) - len(powered)))
    if summary["estimated"]:
        summary["notes"].append("estimated, not measured: %s" % (summary["total_note"] or "model-based"))
    if problems:
        summary["reason"] = "; ".join(problems)
        return _finish(summary, "insufficient samples")
    return _finish(summary, "ok")


def _finish(summary, status):
    # type: (dict, str) -> dict
    summary["status"] = status
    if status.startswith("unavailable: ") and summary["reason"] is None:
        summary["reason"] = status[len("unavailable: "):]
    return summary


def _basis(summary, lower_bound):
    # type: (dict, bool) -> str
    if summary["estimated"]:
        return "estimated: %s" % (summary["total_note"] or "model-based estimate")
    if lower_bound:
        return "sum of rails (lower bound: no board-total rail)"
    if summary["total_rail"]:
        return "rail %s" % summary["total_rail"]
    return summary["total_note"] or "sensor total"


def _too_few(which, count, needed, window_ns, rate):
    # type: (str, int, int, int, float | None) -> str
    text = "%d sample(s) inside the %s window of %.2f s (need %d)" % (count, which, window_ns / 1e9, needed)
    if rate:
        wanted = (needed + 1) / rate
        text += "; the sensor delivers %.2f samples/s" % rate
        if which == "load":
            text += ", so lengthen latency.min_duration_s to at least %.1f s" % (math.ceil(wanted * 10) / 10.0)
        else:
            text += ", so lengthen the idle window to at least %.1f s" % (math.ceil(wanted * 10) / 10.0)
        text += " (or lower power.options.interval_ms)"
    return text


def _rail_means(samples, load_window, idle_window):
    # type: (list[dict], tuple[int, int, list[dict]] | None, tuple[int, int, list[dict]] | None) -> dict
    rails = {}  # type: dict[str, dict[str, float | None]]
    for key, window in (("load_mean_w", load_window), ("idle_mean_w", idle_window)):
        if window is None:
            continue
        values = {}  # type: dict[str, list[float]]
        for sample in window[2]:
            for name, watts in (sample.get("rails") or {}).items():
                if watts is not None:
                    values.setdefault(name, []).append(watts)
        for name, series in values.items():
            rails.setdefault(name, {"idle_mean_w": None, "load_mean_w": None})[key] = _mean(series)
    return rails


def summarize_run(run, inferences=None, latency_ms_mean=None, idle=("idle_begin", "idle_end"),
                  load=("load_begin", "load_end")):
    # type: (dict, int | None, float | None, tuple[str, str], tuple[str, str]) -> dict
    """summarize_power over what Sampler.stop() returned."""
    return summarize_power(run["samples"], run["markers"], idle=idle, load=load, inferences=inferences,
                           latency_ms_mean=latency_ms_mean, sensor=run.get("sensor"),
                           errors=run.get("errors"))
