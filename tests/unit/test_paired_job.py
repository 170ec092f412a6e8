"""Paired jobs on the agent: arms loaded, rounds interleaved in a seeded shuffled order, every
arm's samples kept turn by turn; failures name the arm; an arm that dies keeps the rounds
before it. Run as real agent processes (noop arms: no runtime needed), in one process and
one process per arm, and under Python 3.6 for the process-per-arm conductor and an arm."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from helpers.agent_jobs import run_agent_job
from helpers.interpreters import pyenv_python_or_fail
from helpers.paths import REPO

from harness.agent import PROTOCOL_VERSION
from harness.agent.interleave import turn_iterations
from harness.agent.job import parse_job
from harness.agent.protocol import AgentFailure
from harness.analysis.paired import paired_summary

LATENCY = {"warmup_iterations": 3, "warmup_duration_s": 0, "min_duration_s": 0.0, "max_duration_s": 20.0}


def _arm(name: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "runtime": {"name": "noop", "options": options}, "model": {"files": {}},
            "input": {"shape": [1]}}


def _job(arms: list[dict[str, Any]], **paired: Any) -> dict[str, Any]:
    return {"protocol": PROTOCOL_VERSION, "job_id": "pj1", "kind": "paired", "runtime": {"name": "noop"},
            "model": {"files": {}}, "input": {"shape": [1]}, "latency": dict(LATENCY), "arms": arms,
            "paired": paired}


def _event(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [e for e in events if e["event"] == kind]
    assert len(found) == 1, [e["event"] for e in events]
    return found[0]


@pytest.mark.parametrize("mode", ["in-process", "process-per-arm"])
def test_fixed_rounds_give_every_arm_whole_turns_in_recorded_shuffled_orders(mode: str) -> None:
    code, events, stderr = run_agent_job(_job([_arm("cand", spin_us=200.0), _arm("base", spin_us=100.0)],
                                              mode=mode, rounds=40, seed=7, turn_ms=1.0))
    assert code == 0, stderr
    paired = _event(events, "paired")
    assert paired["stopped_by"] == "rounds" and paired["mode"] == mode and paired["seed"] == 7
    assert len(paired["orders"]) == 40 and all(sorted(o) == [0, 1] for o in paired["orders"])
    firsts = [o[0] for o in paired["orders"]]
    assert 0 < firsts.count(0) < 40, "the order is shuffled, not fixed"
    for arm in paired["arms"]:
        assert len(arm["latency_ns"]) == 40 * arm["turn_iterations"]
        assert len(arm["overhead_ns"]) == 40
    assert [a["name"] for a in paired["arms"]] == ["cand", "base"]
    assert _event(events, "samples")["latency_ns"] == paired["arms"][0]["latency_ns"]
    result = _event(events, "result")
    assert result["kind"] == "paired" and [a["name"] for a in result["arms"]] == ["cand", "base"]
    summary = paired_summary(paired)
    assert summary["rounds"] == 40 and summary["first_in_round"][0] + summary["first_in_round"][1] == 40
    assert summary["ratios"][0]["against"] == "base"


def test_the_same_seed_gives_the_same_round_orders() -> None:
    orders = []
    for _ in range(2):
        code, events, stderr = run_agent_job(_job([_arm("a"), _arm("b"), _arm("c")], rounds=30, seed=11))
        assert code == 0, stderr
        orders.append(_event(events, "paired")["orders"])
    assert orders[0] == orders[1]
    code, events, _ = run_agent_job(_job([_arm("a"), _arm("b"), _arm("c")], rounds=30, seed=12))
    assert _event(events, "paired")["orders"] != orders[0]


def test_adaptive_rounds_stop_at_the_precision_or_say_the_time_ran_out() -> None:
    code, events, stderr = run_agent_job(_job([_arm("a", spin_us=300.0), _arm("b", spin_us=300.0)],
                                              precision=0.05, turn_ms=2.0))
    assert code == 0, stderr
    paired = _event(events, "paired")
    assert paired["stopped_by"] in ("precision", "max-duration")
    if paired["stopped_by"] == "precision":
        assert paired["device_halfwidth"] <= 0.05
    job = _job([_arm("a", spin_us=300.0), _arm("b", spin_us=300.0)], precision=0.000001, turn_ms=2.0)
    job["latency"]["max_duration_s"] = 0.5
    code, events, stderr = run_agent_job(job)
    assert code == 0, stderr
    assert _event(events, "paired")["stopped_by"] == "max-duration"


def test_an_arm_that_cannot_load_fails_the_job_naming_that_arm() -> None:
    missing = {"name": "int8", "runtime": {"name": "onnxruntime"}, "model": {"files": {"model": "/nonexistent.onnx"}},
               "input": {"shape": [1, 3, 8, 8]}}
    for mode in ("in-process", "process-per-arm"):
        code, events, _ = run_agent_job(_job([missing, _arm("fp32")], mode=mode, rounds=5))
        error = _event(events, "error")
        assert code == 1 and "arm int8 (onnxruntime)" in error["message"], error
        assert error["kind"] in ("model-missing", "runtime-missing")
    code, events, _ = run_agent_job(_job([_arm("fp32"), _arm("bad", frobnicate=1)], rounds=5))
    error = _event(events, "error")
    assert error["kind"] == "bad-option" and "arm bad (noop)" in error["message"]


def test_an_arm_killed_mid_run_is_named_and_the_whole_rounds_before_it_are_kept() -> None:
    job = _job([_arm("victim", spin_us=500.0), _arm("survivor", spin_us=500.0)], mode="process-per-arm",
               precision=0, turn_ms=2.0)
    job["latency"]["max_duration_s"] = 60.0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    agent = subprocess.Popen([sys.executable, "-m", "harness.agent"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, cwd=str(REPO), env=env)
    assert agent.stdin is not None and agent.stdout is not None
    agent.stdin.write(json.dumps(job).encode())
    agent.stdin.close()
    events = []
    killed = False
    for line in agent.stdout:
        event = json.loads(line)
        events.append(event)
        if not killed and event["event"] == "progress" and event.get("rounds", 0) >= 3:
            os.kill(next(pid for pid in _arm_pids(events) if pid["name"] == "victim")["pid"], signal.SIGKILL)
            killed = True
    assert agent.wait(timeout=60) == 1 and killed
    error = _event(events, "error")
    assert "arm victim (noop) died mid-run" in error["message"] and "signal 9" in error["message"], error
    paired = _event(events, "paired")
    assert paired["failed_arm"] == "victim" and paired["stopped_by"] == "arm-failed"
    rounds = len(paired["orders"])
    assert rounds >= 3
    for arm in paired["arms"]:
        assert len(arm["latency_ns"]) == rounds * arm["turn_iterations"], "only whole rounds are kept"


def _arm_pids(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return next(e["arms"] for e in events if e["event"] == "progress" and "arms" in e)


def test_arms_on_two_interpreters_run_in_lockstep_under_python36() -> None:
    python36 = pyenv_python_or_fail("3.6.15")  # JetPack 4's Python: the conductor and one arm
    arms = [dict(_arm("py36", spin_us=100.0), python=python36),
            dict(_arm("py311", spin_us=100.0), python=sys.executable)]
    code, events, stderr = run_agent_job(_job(arms, mode="process-per-arm", rounds=20), python=python36)
    assert code == 0, stderr
    paired = _event(events, "paired")
    assert paired["stopped_by"] == "rounds" and len(paired["orders"]) == 20
    result = _event(events, "result")
    pythons = {a["name"]: a for a in result["arms"]}
    assert set(pythons) == {"py36", "py311"}
    hello = _event(events, "hello")
    assert hello["env"]["python"].startswith("3.6")


@pytest.mark.parametrize("paired, message", [
    ({"arms": [_arm("a")]}, "at least two arms"),
    ({"arms": [_arm("a"), _arm("a")]}, "used twice"),
    ({"arms": [_arm("a"), _arm("b")], "paired": {"mode": "threads"}}, "mode"),
    ({"arms": [_arm("a"), _arm("b")], "paired": {"precison": 0.01}}, "precison"),
    ({"arms": [_arm("a"), {"name": "b", "runtime": {}}]}, "arms[1]"),
])
def test_malformed_paired_jobs_are_refused_naming_the_key(paired: dict[str, Any], message: str) -> None:
    job = {"protocol": PROTOCOL_VERSION, "kind": "paired", "runtime": {"name": "noop"}, "model": {"files": {}},
           "input": {"shape": [1]}, **paired}
    with pytest.raises(AgentFailure) as failure:
        parse_job(json.dumps(job).encode())
    assert failure.value.kind == "protocol" and message in failure.value.message


def test_a_turn_lasts_about_turn_ms_within_the_iteration_bounds() -> None:
    settings = {"turn_ms": 10.0, "min_turn_iterations": 5, "max_turn_iterations": 1000}
    assert turn_iterations(1_000_000, settings) == 10  # 1 ms inferences: 10 per 10 ms turn
    assert turn_iterations(50_000_000, settings) == 5  # 50 ms: the floor
    assert turn_iterations(100, settings) == 1000  # 0.1 us: the cap


@pytest.mark.parametrize("mode", ["in-process", "process-per-arm"])
def test_a_paired_job_with_profile_ops_profiles_the_candidate_after_the_rounds(mode: str) -> None:
    job = _job([_arm("cand", spin_us=100.0), _arm("base", spin_us=100.0)], mode=mode, rounds=5)
    job["profile_ops"] = True
    code, events, stderr = run_agent_job(job)
    assert code == 0, stderr
    profile = _event(events, "profile")  # noop has no profiler: a profile that says so, not an error
    assert profile["runtime"] == "noop" and profile["supported"] is False and "noop" in profile["reason"]
    kinds = [e["event"] for e in events]
    assert kinds.index("paired") < kinds.index("profile") < kinds.index("result")
