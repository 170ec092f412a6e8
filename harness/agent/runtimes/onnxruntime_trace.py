"""Reading onnxruntime's profiling trace (the JSON `SessionOptions.enable_profiling` writes)."""


def ort_profile_ops(events, skip_runs=0):
    """Per-node totals from an ORT profiling trace: [{"op", "type", "time_ms", "calls"}].

    Node events that end before the end of the first `skip_runs` `model_run` events (warm-up)
    are left out."""
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e.get("ts", 0))
    cutoff = 0
    if skip_runs and len(runs) > skip_runs:
        last = runs[skip_runs - 1]
        cutoff = last.get("ts", 0) + last.get("dur", 0)
    nodes = {}  # type: dict[str, dict]
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time") or event.get("ts", 0) < cutoff:
            continue
        node = name[:-len("_kernel_time")]
        args = event.get("args") or {}
        entry = nodes.setdefault(node, {"op": node, "type": args.get("op_name", "?"), "time_ms": 0.0, "calls": 0,
                                        "provider": args.get("provider", "")})
        entry["time_ms"] += float(event.get("dur", 0)) / 1000.0
        entry["calls"] += 1
    return list(nodes.values())
