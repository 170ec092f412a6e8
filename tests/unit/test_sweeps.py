"""Parameter sweeps: parsing (--sweep and the manifest's `sweeps:`), expansion into derived
variants, and the cheapest point that meets every budget (pure functions over records)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.analysis.cheapest import PointResult, cheapest_point, cost_key, point_results, sweep_curves
from harness.config.manifest import load_manifest
from harness.config.sweep_specs import (
    POWER_LADDER,
    Sweep,
    SweepSpecError,
    parse_point_id,
    parse_sweep_option,
    parse_sweep_options,
)
from harness.errors import ConfigError
from harness.records import MeasurementRecord
from harness.run.declared_input_shapes import UnreadableModelFile, read_declared_input_shape
from harness.run.sweep_points import expand, expand_variant, image_layout, sweeps_for

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_zoo_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_ZOO_DIR", raising=False)


def _paddle(name: str, **changes: Any) -> dict[str, Any]:
    data = {"kind": "fp32", "format": "paddle", "runtime": "paddle-inference",
            "files": {"model": f"{{zoo}}/m/{name}/inference.pdmodel", "params": f"{{zoo}}/m/{name}/inference.pdiparams"},
            "runtime_options": {"threads": 1, "mkldnn": True}}
    data.update(changes)
    return data


def _onnx(name: str, **changes: Any) -> dict[str, Any]:
    data = {"kind": "fp32", "format": "onnx", "runtime": "onnxruntime", "baseline": "fp32",
            "files": {"model": f"{{zoo}}/m/{name}/model.onnx"}, "runtime_options": {"threads": 1}}
    data.update(changes)
    return data


def _manifest(tmp_path: Path, model_extra: dict[str, Any] | None = None, **variant_extra: dict[str, Any]):
    variants = {
        "fp32": _paddle("fp32"),
        "int8": _paddle("int8", kind="int8-ptq", baseline="fp32",
                        runtime_options={"threads": 1, "mkldnn": True, "precision": "int8"}),
        "pruned": _paddle("pruned", kind="pruned", baseline="fp32"),
        "onnx": _onnx("onnx"),
        "onnx_int8": _onnx("onnx-int8", kind="int8-ptq", baseline="onnx"),
        "lite": {"kind": "fp32", "format": "paddle-lite", "runtime": "paddle-lite", "baseline": "fp32",
                 "files": {"model": "{zoo}/m/lite/model.nb"}},
        "tflite": {"kind": "fp32", "format": "tflite", "runtime": "litert", "baseline": "fp32",
                   "files": {"model": "{zoo}/m/m.tflite"}, "input": {"shape": [1, 8, 8, 3]},
                   "runtime_options": {"threads": 1, "xnnpack": True}},
        "noop": {"kind": "other", "format": "none", "runtime": "noop", "baseline": "fp32"},
    }
    for name, extra in variant_extra.items():
        variants[name].update(extra)
    model = {"input": {"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32"},
             "budgets": {"*": {"target_latency": "10ms", "max_memory": "1GB"}}, "variants": variants}
    model.update(model_extra or {})
    path = tmp_path / "suites" / "models.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"version": 1, "zoo_dir": "../zoo", "models": {"m": model}}, sort_keys=False))
    return load_manifest(path)


# --------------------------------------------------------------------------- parsing


def test_sweep_options_parse_every_parameter() -> None:
    assert parse_sweep_option("threads=1,2,4") == Sweep("threads", (1, 2, 4), "--sweep threads")
    assert parse_sweep_option("batch=1, 4").values == (1, 4)
    assert parse_sweep_option("resolution=224,448,640x32").values == ((224, 224), (448, 448), (640, 32))
    assert parse_sweep_option("resolution=224,640x32").labels() == ["224", "640x32"]
    assert parse_sweep_option("precision=FP32,int8").values == ("fp32", "int8")
    assert parse_sweep_option("power_mode=low,LITE_POWER_HIGH,full").values == (
        "LITE_POWER_LOW", "LITE_POWER_HIGH", "LITE_POWER_FULL")
    assert parse_sweep_option("power-mode=no_bind").values == ("LITE_POWER_NO_BIND",)
    sweeps = parse_sweep_options(["threads=1,2", "batch=1,4"])
    assert [s.parameter for s in sweeps] == ["threads", "batch"]


@pytest.mark.parametrize("text, says", [
    ("threads", "write PARAMETER=V1,V2"),
    ("threads=", "write PARAMETER=V1,V2"),
    ("cores=1,2", "unknown sweep parameter 'cores'"),
    ("threads=0,2", "whole numbers >= 1"),
    ("threads=1.5", "whole numbers >= 1"),
    ("batch=1,,4", "not a batch value"),
    ("resolution=big", "like 224 (square) or 640x32"),
    ("resolution=0x32", "like 224 (square) or 640x32"),
    ("precision=int3", "precision values are"),
    ("threads=1,2,1", "threads value 1 is listed twice"),
])
def test_bad_sweep_options_say_what_to_write(text: str, says: str) -> None:
    with pytest.raises(SweepSpecError) as caught:
        parse_sweep_option(text)
    assert says in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith("--sweep")


def test_one_parameter_swept_twice_is_refused_with_the_merged_option() -> None:
    with pytest.raises(SweepSpecError) as caught:
        parse_sweep_options(["threads=1,2", "threads=4"])
    assert "--sweep threads=1,2,4" in str(caught.value)


def test_point_ids_round_trip() -> None:
    assert parse_point_id("mobilenet_v3_small-fp32@threads=2") == ("mobilenet_v3_small-fp32", "threads", "2")
    assert parse_point_id("fp32@resolution=640x32") == ("fp32", "resolution", "640x32")
    assert parse_point_id("mobilenet_v3_small-fp32") is None
    assert parse_point_id("x@cores=2") is None


# --------------------------------------------------------------------------- the manifest's sweeps: key


def test_manifest_sweeps_on_model_and_variant(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, {"sweeps": {"threads": [1, 2], "batch": [1, 4]}},
                         int8={"sweeps": {"threads": [1, 2, 4]}})
    fp32, int8 = manifest.get("m-fp32"), manifest.get("m-int8")
    assert fp32.sweeps["threads"].values == (1, 2) and fp32.sweeps["batch"].values == (1, 4)
    assert int8.sweeps["threads"].values == (1, 2, 4) and int8.sweeps["batch"].values == (1, 4)  # key by key
    assert fp32.sweeps["threads"].source == "models.m.sweeps.threads"
    # the command line replaces the manifest's sweep of the same parameter, keeps the others
    merged = sweeps_for(fp32, parse_sweep_options(["threads=4,8"]))
    assert [(s.parameter, s.values) for s in merged] == [("threads", (4, 8)), ("batch", (1, 4))]


def test_shipped_manifest_declares_a_thread_batch_and_resolution_sweep() -> None:
    manifest = load_manifest(REPO / "suites" / "models.yaml")
    mobilenet = manifest.get("mobilenet_v3_small-fp32")
    assert set(mobilenet.sweeps) == {"threads", "batch"}
    assert manifest.get("ppocr_rec-fp32").sweeps["resolution"].values == ((320, 32), (640, 32))
    assert not manifest.get("tiny_cnn-fp32").sweeps


@pytest.mark.parametrize("sweeps, key, says", [
    ([1, 2], "models.m.sweeps", "expected a mapping"),
    ({"cores": [1]}, "models.m.sweeps.cores", "unknown sweep parameter"),
    ({"threads": []}, "models.m.sweeps.threads", "give a list of threads values"),
    ({"batch": [0]}, "models.m.sweeps.batch", "whole numbers >= 1"),
])
def test_bad_manifest_sweeps_name_the_key(tmp_path: Path, sweeps: Any, key: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _manifest(tmp_path, {"sweeps": sweeps})
    assert caught.value.key == key and says in caught.value.message


# --------------------------------------------------------------------------- expansion


def test_thread_points_set_the_runtime_option_and_pair_with_the_baselines_point(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    points = expand_variant(manifest.get("m-int8"), parse_sweep_option("threads=1,2,4"))
    assert [p.id for p in points] == ["m-int8@threads=1", "m-int8@threads=2", "m-int8@threads=4"]
    two = points[1].variant
    assert two.id == "m-int8@threads=2" and two.name == "int8@threads=2"
    assert dict(two.runtime_options) == {"threads": 2, "mkldnn": True, "precision": "int8"}
    assert two.baseline == "fp32@threads=2" and two.input == manifest.get("m-int8").input
    assert two.files == manifest.get("m-int8").files
    base = expand_variant(manifest.get("m-fp32"), parse_sweep_option("threads=2"))[0].variant
    assert base.baseline is None and base.is_baseline


def test_runtimes_without_the_option_are_skipped_with_the_reason(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    [point] = expand_variant(manifest.get("m-noop"), parse_sweep_option("threads=2"))
    assert point.variant is None and point.skipped == "noop has no threads option"
    [power] = expand_variant(manifest.get("m-onnx"), parse_sweep_option("power_mode=high"))
    assert power.skipped == "onnxruntime has no power_mode option"
    low, high = expand_variant(manifest.get("m-lite"), parse_sweep_option("power_mode=low,high"))
    assert dict(low.variant.runtime_options) == {"power_mode": "LITE_POWER_LOW"}
    assert high.id == "m-lite@power_mode=LITE_POWER_HIGH"
    [litert] = expand_variant(manifest.get("m-tflite"), parse_sweep_option("threads=4"))
    assert dict(litert.variant.runtime_options) == {"threads": 4, "xnnpack": True}


def test_batch_and_resolution_change_the_input_shape_by_layout(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    fp32 = manifest.get("m-fp32")
    assert [p.variant.input.shape for p in expand_variant(fp32, parse_sweep_option("batch=1,4"))] == [
        (1, 3, 8, 8), (4, 3, 8, 8)]
    nchw = expand_variant(fp32, parse_sweep_option("resolution=16,32x8"))
    assert [p.variant.input.shape for p in nchw] == [(1, 3, 16, 16), (1, 3, 8, 32)]  # WxH: H=8, W=32
    nhwc = expand_variant(manifest.get("m-tflite"), parse_sweep_option("resolution=32x16"))
    assert nhwc[0].variant.input.shape == (1, 16, 32, 3)
    assert image_layout((1, 3, 224, 224)) == "NCHW" and image_layout((1, 128, 128, 3)) == "NHWC"
    assert image_layout((1, 10)) is None


def test_fixed_input_dims_skip_shape_points_and_dynamic_ones_run(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    declared = {"m-onnx": (1, 3, 8, 8), "m-tflite": (None, 8, 8, 3)}
    shape = lambda variant: declared.get(variant.id)  # noqa: E731
    points = expand(manifest.variants, parse_sweep_options(["batch=1,2", "resolution=8,16"]), input_shape=shape)
    by_id = {p.id: p for p in points}
    assert by_id["m-onnx@batch=1"].variant is not None  # same as declared: runs
    assert by_id["m-onnx@batch=2"].variant is None
    assert "fixed at [1, 3, 8, 8]" in by_id["m-onnx@batch=2"].skipped
    assert "batch=2 needs dims [0] dynamic" in by_id["m-onnx@batch=2"].skipped
    assert by_id["m-tflite@batch=2"].variant.input.shape == (2, 8, 8, 3)  # batch dim declared dynamic
    assert by_id["m-tflite@resolution=16"].variant is None
    assert by_id["m-fp32@resolution=16"].variant.input.shape == (1, 3, 16, 16)  # paddle: the runtime decides
    assert by_id["m-noop@batch=2"].variant.input.shape == (2, 3, 8, 8)  # no declared shape: runs


def test_precision_points_are_the_models_variants_of_that_precision(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    points = expand(manifest.variants, parse_sweep_options(["precision=fp32,int8"]))
    by_id = {p.id: p for p in points}
    to_int8 = by_id["m-fp32@precision=int8"].variant
    assert to_int8.files == manifest.get("m-int8").files and to_int8.kind == "int8-ptq"
    assert to_int8.name == "fp32@precision=int8" and to_int8.baseline == "fp32"
    assert by_id["m-fp32@precision=fp32"].variant.files == manifest.get("m-fp32").files
    assert by_id["m-onnx@precision=int8"].variant.files == manifest.get("m-onnx_int8").files  # same runtime
    assert by_id["m-onnx_int8@precision=fp32"].variant.files == manifest.get("m-onnx").files
    assert by_id["m-lite@precision=int8"].skipped == "m has no int8 variant for paddle-lite"
    assert "is a pruned variant" in by_id["m-pruned@precision=int8"].skipped


def test_ambiguous_precision_counterparts_are_refused(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, None, pruned={"kind": "int8-qat", "baseline": "int8"})
    # fp32 now has two int8 paddle-inference variants; only int8 names fp32 as its baseline
    [point] = expand_variant(manifest.get("m-fp32"), parse_sweep_option("precision=int8"), manifest.variants)
    assert point.variant.files == manifest.get("m-int8").files
    manifest = _manifest(tmp_path, None, pruned={"kind": "int8-qat", "baseline": "fp32"})
    [point] = expand_variant(manifest.get("m-fp32"), parse_sweep_option("precision=int8"), manifest.variants)
    assert point.variant is None and "2 int8 variants" in point.skipped


def test_declared_input_shapes_of_the_real_zoo() -> None:
    manifest = load_manifest(REPO / "suites" / "models.yaml")
    onnx = manifest.get("mobilenet_v3_small-onnx")
    if onnx is None or onnx.missing_files() or manifest.get("ppocr_rec-fp32").missing_files():
        pytest.skip("zoo not built (harness zoo build)")
    assert read_declared_input_shape(onnx) == (1, 3, 96, 96)  # paddle2onnx of a fixed InputSpec
    assert read_declared_input_shape(manifest.get("ppocr_rec-fp32")) == (None, 3, None, None)
    assert read_declared_input_shape(manifest.get("mobilenet_v3_small-fp32")) is None  # the predictor reshapes
    landmark = manifest.get("face_landmark-xnnpack")
    if not landmark.missing_files():
        assert read_declared_input_shape(landmark) == (1, 192, 192, 3)


def test_declared_input_shapes_of_missing_and_unreadable_files(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    onnx, tflite = manifest.get("m-onnx"), manifest.get("m-tflite")
    assert read_declared_input_shape(onnx) is None  # not built yet: its measurement says the file is missing
    assert read_declared_input_shape(manifest.get("m-fp32")) is None  # paddle: nothing is read
    for variant in (onnx, tflite):
        path = Path(variant.files["model"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a model\n\x00\xff")
        with pytest.raises(UnreadableModelFile) as caught:
            read_declared_input_shape(variant)
        assert str(caught.value).startswith(f"{path}: cannot read the model's declared input shape here (")
        assert "\n" not in str(caught.value)


# --------------------------------------------------------------------------- the cheapest point


def _record(variant: str, metric: str, summary: dict[str, Any], status: str = "ok", target: str = "local",
            shape: list[int] | None = None) -> MeasurementRecord:
    budget = {"target_latency_s": 0.010, "max_memory_bytes": 500 * 2**20, "max_power_w": None, "statistic": "p90",
              "source": "models.yaml"}
    meta: dict[str, Any] = {"budget": budget, "input": {"shape": shape or [1, 3, 8, 8]}}
    if status != "ok":
        meta["error"] = "agent crashed"
    return MeasurementRecord(run_id="r", target=target, model="m", variant=variant, metric=metric,
                             unit="ms" if metric == "latency" else "bytes", status=status, summary=summary, meta=meta)


def _latency(p90: float, throughput: float = 100.0) -> dict[str, Any]:
    return {"p50": p90 * 0.8, "p90": p90, "mean": p90 * 0.85, "throughput": throughput, "peak_rss_bytes": 300 * 2**20}


def test_cheapest_thread_count_meeting_every_budget() -> None:
    records = [_record("fp32@threads=1", "latency", _latency(14.0)),
               _record("fp32@threads=4", "latency", _latency(5.0)),
               _record("fp32@threads=2", "latency", _latency(8.0)),
               _record("fp32@threads=2", "memory", {"peak_rss_bytes": 310 * 2**20}),
               _record("fp32", "latency", _latency(14.0))]  # the base variant is not a point
    points = point_results(records)
    assert sorted(p.id for p in points) == ["m-fp32@threads=1", "m-fp32@threads=2", "m-fp32@threads=4"]
    two = next(p for p in points if p.label == "2")
    assert two.value == 2 and two.latency_ms["p90"] == 8.0 and two.peak_memory_bytes == 310 * 2**20
    choice = cheapest_point(points, records[0].meta["budget"])
    assert choice.point is two and choice.parameter == "threads" and choice.cost_order == "fewest threads first"
    assert [c["label"] for c in choice.checks] == ["1", "2", "4"]
    assert choice.checks[0]["meets"] is False and choice.checks[0]["failures"] == ["p90 14.000 ms > 10.000 ms"]
    assert "threads=2" in choice.message


def test_no_point_meets_the_budget_and_the_message_says_why() -> None:
    points = point_results([_record("fp32@batch=1", "latency", _latency(12.0)),
                            _record("fp32@batch=4", "latency", _latency(40.0)),
                            _record("fp32@batch=4", "memory", {"peak_rss_bytes": 900 * 2**20})])
    choice = cheapest_point(points, {"target_latency_s": 0.010, "max_memory_bytes": 500 * 2**20, "statistic": "p90"})
    assert choice.point is None
    assert "no batch point of m-fp32 on local meets the budget" in choice.message
    assert "p90 12.000 ms > 10.000 ms" in choice.message
    four = next(c for c in choice.checks if c["label"] == "4")
    assert any("peak memory 900.0 MiB > 500.0 MiB" in f for f in four["failures"])


def test_unmeasured_or_failed_points_never_qualify() -> None:
    points = point_results([_record("fp32@threads=1", "latency", {}, status="error"),
                            _record("fp32@threads=2", "latency", {"p50": 1.0})])  # no p90
    choice = cheapest_point(points, {"target_latency_s": 0.010, "statistic": "p90"})
    assert choice.point is None
    assert choice.checks[0]["failures"] == ["latency: agent crashed", "no p90 latency measured"]
    assert choice.checks[1]["failures"] == ["no p90 latency measured"]
    power = point_results([_record("fp32@threads=1", "latency", _latency(1.0))])
    assert cheapest_point(power, {"max_power_w": 5.0}).checks[0]["failures"] == ["no power measured"]
    assert cheapest_point(power, None).point is not None  # no limits: the cheapest measured point


def test_a_manifest_budget_is_checked_like_the_stored_one(tmp_path: Path) -> None:
    budget = _manifest(tmp_path).get("m-fp32").budget_for("local")  # 10 ms, 1 GB
    points = point_results([_record("fp32@threads=1", "latency", _latency(14.0)),
                            _record("fp32@threads=2", "latency", _latency(8.0))])
    choice = cheapest_point(points, budget)
    assert choice.point is not None and choice.point.label == "2"
    assert choice.checks[0]["failures"] == ["p90 14.000 ms > 10.000 ms"]


def test_batch_throughput_counts_inputs_and_cost_orders() -> None:
    [point] = point_results([_record("fp32@batch=4", "latency", _latency(20.0, throughput=50.0), shape=[4, 3, 8, 8])])
    assert point.throughput_per_s == 200.0
    assert sorted([(640, 32), (224, 224), (320, 32)], key=lambda v: cost_key("resolution", v)) == [
        (320, 32), (640, 32), (224, 224)]
    assert sorted(["fp32", "int8", "fp16"], key=lambda v: cost_key("precision", v)) == ["int8", "fp16", "fp32"]
    ladder = sorted(["LITE_POWER_FULL", "LITE_POWER_HIGH", "LITE_POWER_LOW"], key=lambda v: cost_key("power_mode", v))
    assert ladder == ["LITE_POWER_LOW", "LITE_POWER_HIGH", "LITE_POWER_FULL"] and set(ladder) <= set(POWER_LADDER)


def test_points_of_different_sweeps_are_not_compared() -> None:
    points = [PointResult("m-a@threads=1", "local", "m-a", "threads", "1", 1),
              PointResult("m-a@batch=1", "local", "m-a", "batch", "1", 1)]
    with pytest.raises(ValueError, match="one sweep"):
        cheapest_point(points, None)


def test_sweep_curves_group_by_target_variant_and_parameter() -> None:
    records = [_record("fp32@threads=2", "latency", _latency(8.0)), _record("fp32@threads=1", "latency", _latency(14.0)),
               _record("fp32@batch=4", "latency", _latency(9.0), shape=[4, 3, 8, 8]),
               _record("fp32@threads=1", "latency", _latency(7.0), target="board")]
    curves = sweep_curves(records)
    assert [(c.target, c.parameter, [p.label for p in c.points]) for c in curves] == [
        ("board", "threads", ["1"]), ("local", "batch", ["4"]), ("local", "threads", ["1", "2"])]
    local_threads = curves[2]
    assert local_threads.budget["target_latency_s"] == 0.010
    assert local_threads.choice.point.label == "2"
