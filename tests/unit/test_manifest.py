"""The model manifest and deployment configs: real files in tmp_path."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config.deployment_config import load_deployment_config
from harness.config.manifest import load_manifest
from harness.config.variants import LatencySettings, Manifest
from harness.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

DEPLOYMENT_TEXT = """\
deployment:
  hardware: "jetson-nano"
  precision: "int8"
  batch_size: 1
  memory_optimization: true
  operator_fusion: true
  thread_num: 4
performance:
  target_latency: 10ms
  max_memory: 512MB
  power_consumption: 5W
monitoring:
  enable: true
  metrics: ["latency", "memory", "throughput"]
"""


@pytest.fixture(autouse=True)
def _no_zoo_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_ZOO_DIR", raising=False)


def paddle_variant(name: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "fp32",
        "format": "paddle",
        "runtime": "paddle-inference",
        "files": {"model": f"{{zoo}}/m/{name}/inference.pdmodel", "params": f"{{zoo}}/m/{name}/inference.pdiparams"},
        "runtime_options": {"threads": 1, "mkldnn": True},
    }
    data.update(changes)
    return data


def manifest_data() -> dict[str, Any]:
    return {
        "version": 1,
        "zoo_dir": "../zoo",
        "defaults": {"latency": {"warmup_iterations": 5, "min_duration": "1s"}},
        "models": {
            "m": {
                "input": {"name": "x", "shape": [1, 3, 8, 8], "dtype": "float32"},
                "budgets": {"*": {"target_latency": "50ms", "max_memory": "1GB"}},
                "variants": {
                    "fp32": paddle_variant("fp32"),
                    "int8": paddle_variant("int8", kind="int8-ptq", baseline="fp32"),
                },
            }
        },
    }


def write_manifest(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "suites" / "models.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def manifest_error(tmp_path: Path, data: dict[str, Any] | str) -> ConfigError:
    path = write_manifest(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_manifest(path)
    assert caught.value.source == str(path)
    return caught.value


def variant(data: dict[str, Any], name: str) -> dict[str, Any]:
    return data["models"]["m"]["variants"][name]  # type: ignore[no-any-return]


# --- the shipped manifest ----------------------------------------------------------------


def test_shipped_manifest_loads() -> None:
    manifest = load_manifest(REPO / "suites" / "models.yaml")
    compressed = ("fp32", "int8", "qat", "pruned", "lite", "lite_quant_broken", "onnx", "onnx_int8")
    assert [v.id for v in manifest.variants] == [
        *(f"tiny_cnn-{name}" for name in (*compressed[:5], "lite_arm", *compressed[5:])),
        *(f"mobilenet_v3_small-{name}" for name in (compressed[0], "distilled", *compressed[1:])),
        "ppocr_rec-fp32",
        "ppocr_rec-int8",
        *(f"{model}-{name}" for model in ("face_detection_short_range", "face_landmark", "face_detection_full_range")
          for name in ("xnnpack", "no_xnnpack")),
    ]
    assert all(v.baseline in (None, "fp32", "onnx", "xnnpack") for v in manifest.variants)
    # every Paddle Lite .nb says which arch it was built for: the arch check refuses it elsewhere
    assert {v.id: v.arch for v in manifest.variants if v.format == "paddle-lite"} == {
        "tiny_cnn-lite": "x86_64", "tiny_cnn-lite_arm": "aarch64", "tiny_cnn-lite_quant_broken": "x86_64",
        "mobilenet_v3_small-lite": "x86_64", "mobilenet_v3_small-lite_quant_broken": "x86_64"}
    landmark = manifest.get("face_landmark-no_xnnpack")
    assert landmark is not None and landmark.format == "tflite" and landmark.runtime == "litert"
    assert landmark.input.shape == (1, 192, 192, 3) and dict(landmark.runtime_options) == {"threads": 1, "xnnpack": False}
    assert landmark.files["model"] == str(REPO / ".zoo/mediapipe/face_landmark.tflite")
    assert manifest.zoo_dir == str(REPO / ".zoo")
    tiny = manifest.get("tiny_cnn-int8")
    assert tiny is not None
    assert tiny.kind == "int8-ptq" and tiny.baseline == "fp32" and not tiny.is_baseline
    assert tiny.input.shape == (1, 3, 64, 64)
    assert tiny.files["model"] == str(REPO / ".zoo/tiny_cnn/int8/inference.pdmodel")
    assert tiny.files["params"] == str(REPO / ".zoo/tiny_cnn/int8/inference.pdiparams")
    assert dict(tiny.runtime_options) == {"threads": 1, "mkldnn": True, "precision": "int8"}
    assert tiny.latency == LatencySettings(10, 0.3, 50, 1.0, 30.0)
    local = tiny.budget_for("local")
    assert local is not None and local.target_latency_s == pytest.approx(0.020) and local.max_memory_bytes == 1024**3
    mobilenet = manifest.get("mobilenet_v3_small-fp32")
    assert mobilenet is not None and mobilenet.is_baseline and mobilenet.input.shape == (1, 3, 96, 96)
    assert mobilenet.dataset == str(REPO / ".zoo/mobilenet_v3_small/data/digits-test.npz")
    mobilenet_local = mobilenet.budget_for("local")
    assert mobilenet_local is not None
    assert mobilenet_local.target_latency_s == pytest.approx(0.050)
    assert mobilenet_local.max_memory_bytes == 1536 * 1024**2
    assert mobilenet_local.source.endswith("models.yaml: models.mobilenet_v3_small.budgets.local")
    nano = mobilenet.budget_for("jetson-nano")
    assert nano is not None
    assert nano.target_latency_s == pytest.approx(0.010)
    assert nano.max_memory_bytes == 512 * 1024**2
    assert nano.max_power_w == 5.0
    assert nano.source.endswith("deployments/jetson-nano-mobilenet.yaml")
    assert manifest.baseline_of(mobilenet) is None


def test_shipped_deployment_config_loads() -> None:
    budget = load_deployment_config(REPO / "suites" / "deployments" / "jetson-nano-mobilenet.yaml")
    assert budget.target_latency_s == pytest.approx(0.010)
    assert budget.deployment["hardware"] == "jetson-nano"


# --- a valid manifest --------------------------------------------------------------------


def test_variants_ids_baselines_and_defaults(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, manifest_data()))
    assert isinstance(manifest, Manifest)
    assert [v.id for v in manifest.variants] == ["m-fp32", "m-int8"]
    fp32, int8 = manifest.models["m"]
    assert manifest.baseline_of(int8) is fp32
    assert fp32.latency == LatencySettings(
        warmup_iterations=5, warmup_duration_s=0.5, min_iterations=50, min_duration_s=1.0, max_duration_s=60.0
    )
    budget = int8.budget_for("anything")
    assert budget is not None and budget.statistic == "p90"
    assert budget.source == f"{tmp_path / 'suites/models.yaml'}: models.m.budgets.*"
    assert manifest.get("m-fp16") is None


def test_zoo_expansion_relative_to_manifest(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, manifest_data()))
    assert manifest.zoo_dir == str(tmp_path / "zoo")
    assert manifest.models["m"][0].files["model"] == str(tmp_path / "zoo/m/fp32/inference.pdmodel")


def test_zoo_dir_default(tmp_path: Path) -> None:
    data = manifest_data()
    del data["zoo_dir"]
    assert load_manifest(write_manifest(tmp_path, data)).zoo_dir == str(tmp_path / "suites/.zoo")


def test_zoo_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_ZOO_DIR", str(tmp_path / "elsewhere"))
    manifest = load_manifest(write_manifest(tmp_path, manifest_data()))
    assert manifest.zoo_dir == str(tmp_path / "elsewhere")
    assert manifest.models["m"][1].files["params"] == str(tmp_path / "elsewhere/m/int8/inference.pdiparams")


def test_zoo_dir_env_override_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_ZOO_DIR", "built")
    assert load_manifest(write_manifest(tmp_path, manifest_data())).zoo_dir == str(tmp_path / "built")


def test_relative_and_absolute_files(tmp_path: Path) -> None:
    data = manifest_data()
    variant(data, "fp32")["files"] = {"model": "models/a.json", "params": str(tmp_path / "abs.pdiparams")}
    fp32 = load_manifest(write_manifest(tmp_path, data)).models["m"][0]
    assert fp32.files == {"model": str(tmp_path / "suites/models/a.json"), "params": str(tmp_path / "abs.pdiparams")}


def test_missing_files(tmp_path: Path) -> None:
    fp32 = load_manifest(write_manifest(tmp_path, manifest_data())).models["m"][0]
    assert fp32.missing_files() == [fp32.files["model"], fp32.files["params"]]
    Path(fp32.files["model"]).parent.mkdir(parents=True)
    Path(fp32.files["model"]).write_bytes(b"")
    assert fp32.missing_files() == [fp32.files["params"]]


def test_budget_precedence_exact_over_star(tmp_path: Path) -> None:
    data = manifest_data()
    data["models"]["m"]["budgets"]["local"] = {"target_latency": "20ms", "statistic": "p99"}
    fp32 = load_manifest(write_manifest(tmp_path, data)).models["m"][0]
    local = fp32.budget_for("local")
    assert local is not None and local.target_latency_s == pytest.approx(0.020)
    assert local.max_memory_bytes is None and local.statistic == "p99"
    other = fp32.budget_for("jetson-nano")
    assert other is not None and other.target_latency_s == pytest.approx(0.050) and other.max_memory_bytes == 1024**3


def test_no_budget(tmp_path: Path) -> None:
    data = manifest_data()
    del data["models"]["m"]["budgets"]
    assert load_manifest(write_manifest(tmp_path, data)).models["m"][0].budget_for("local") is None


def test_default_statistic(tmp_path: Path) -> None:
    data = manifest_data()
    data["defaults"]["budget_statistic"] = "p95"
    budget = load_manifest(write_manifest(tmp_path, data)).models["m"][0].budget_for("x")
    assert budget is not None and budget.statistic == "p95"


def test_deployment_budget_in_manifest(tmp_path: Path) -> None:
    (tmp_path / "suites/deployments").mkdir(parents=True)
    (tmp_path / "suites/deployments/nano.yaml").write_text(DEPLOYMENT_TEXT)
    data = manifest_data()
    data["models"]["m"]["budgets"]["jetson-nano"] = {"deployment": "deployments/nano.yaml", "statistic": "mean"}
    budget = load_manifest(write_manifest(tmp_path, data)).models["m"][1].budget_for("jetson-nano")
    assert budget is not None
    assert budget.source == str(tmp_path / "suites/deployments/nano.yaml")
    assert budget.max_power_w == 5.0 and budget.statistic == "mean"


def test_variant_overrides_input_and_latency(tmp_path: Path) -> None:
    data = manifest_data()
    data["models"]["m"]["latency"] = {"max_duration": "20s"}
    variant(data, "int8")["input"] = {"dtype": "int8"}
    variant(data, "int8")["latency"] = {"min_iterations": 100, "warmup_duration": "250ms"}
    fp32, int8 = load_manifest(write_manifest(tmp_path, data)).models["m"]
    assert fp32.input.dtype == "float32" and int8.input.dtype == "int8"
    assert int8.input.shape == (1, 3, 8, 8) and int8.input.name == "x"
    assert fp32.latency.max_duration_s == 20.0 and fp32.latency.min_iterations == 50
    assert int8.latency.min_iterations == 100 and int8.latency.max_duration_s == 20.0
    assert int8.latency.warmup_duration_s == pytest.approx(0.25)


def test_baseline_chain_is_allowed(tmp_path: Path) -> None:
    data = manifest_data()
    variant(data, "int8")["baseline"] = "fp16"
    data["models"]["m"]["variants"]["fp16"] = paddle_variant("fp16", kind="fp16", baseline="fp32")
    manifest = load_manifest(write_manifest(tmp_path, data))
    assert [v.name for v in manifest.variants if v.is_baseline] == ["fp32"]


def test_noop_variant_needs_no_files(tmp_path: Path) -> None:
    data = manifest_data()
    data["models"]["m"]["variants"]["noop"] = {"kind": "other", "format": "none", "runtime": "noop"}
    noop = load_manifest(write_manifest(tmp_path, data)).get("m-noop")
    assert noop is not None and dict(noop.files) == {} and noop.missing_files() == []


def test_runtime_options_are_frozen(tmp_path: Path) -> None:
    fp32 = load_manifest(write_manifest(tmp_path, manifest_data())).models["m"][0]
    with pytest.raises(TypeError):
        fp32.runtime_options["threads"] = 4  # type: ignore[index]
    assert hash(fp32) == hash(copy.copy(fp32))


# --- bad manifests -----------------------------------------------------------------------


def edit(path: str, value: Any) -> dict[str, Any]:
    """manifest_data() with the dotted ``path`` set to ``value`` (``None`` deletes it)."""
    data = manifest_data()
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "key", "fragment"),
    [
        ("version", None, "version", "missing required key"),
        ("version", 2, "version", "unsupported version 2: this harness reads version 1"),
        ("version", "1", "version", "expected a whole number"),
        ("models", {}, "models", "no models declared"),
        ("models", None, "models", "missing required key"),
        ("extra", 1, "extra", "allowed keys here: version, zoo_dir, defaults, models"),
        ("defaults.latncy", {}, "defaults.latncy", "did you mean 'latency'?"),
        ("defaults.latency.warmup_iteration", 3, "defaults.latency.warmup_iteration", "did you mean 'warmup_iterations'?"),
        ("defaults.latency.min_duration", 2, "defaults.latency.min_duration", "add a unit, e.g. 10ms"),
        ("defaults.latency.min_duration", "10 parsecs", "defaults.latency.min_duration", "cannot read '10 parsecs'"),
        ("defaults.latency.max_duration", "500ms", "defaults.latency.max_duration", "shorter than min_duration"),
        ("defaults.latency.min_iterations", 0, "defaults.latency.min_iterations", "use 1 or more"),
        ("defaults.budget_statistic", "p42", "defaults.budget_statistic", "allowed: p50, p90, p95, p99, mean"),
        ("models.m.variants", {}, "models.m.variants", "no variants declared"),
        ("models.m.variants", None, "models.m.variants", "missing required key"),
        ("models.m.colour", "red", "models.m.colour", "allowed keys here: description, input"),
        ("models.m.input.shape", [1, 0], "models.m.input.shape", "positive whole numbers"),
        ("models.m.input.shape", "1x3", "models.m.input.shape", "positive whole numbers"),
        ("models.m.input.dtype", "float", "models.m.input.dtype", "allowed: float32, float16"),
        ("models.m.input.layout", "nchw", "models.m.input.layout", "allowed keys here: name, shape, dtype"),
        ("models.m.input.shape", None, "models.m.variants.fp32.input", "input has no 'shape': set it in models.m.input"),
        ("models.m.variants.fp32.kind", "fp8", "models.m.variants.fp32.kind", "allowed: fp32, fp16, int8-ptq, int8-qat"),
        ("models.m.variants.fp32.kind", None, "models.m.variants.fp32.kind", "missing required key"),
        ("models.m.variants.fp32.format", "pickle", "models.m.variants.fp32.format", "allowed: paddle, paddle-lite, onnx"),
        ("models.m.variants.fp32.runtime", "tensorrt", "models.m.variants.fp32.runtime", "allowed: paddle-inference"),
        ("models.m.variants.fp32.runtime", "onnxruntime", "models.m.variants.fp32.runtime", "cannot run format 'paddle'"),
        ("models.m.variants.fp32.runtime_options", "fast", "models.m.variants.fp32.runtime_options", "expected a mapping"),
        ("models.m.variants.fp32.colour", 1, "models.m.variants.fp32.colour", "allowed keys here: description, kind"),
        ("models.m.variants.fp32.files.params", None, "models.m.variants.fp32.files.params", "missing required key"),
        ("models.m.variants.fp32.files.weights", "w.bin", "models.m.variants.fp32.files.weights", "allowed roles: model, params"),
        ("models.m.variants.fp32.files.model", "m.onnx", "models.m.variants.fp32.files.model", "ends with .pdmodel or .json"),
        ("models.m.variants.fp32.files.model", "{zoo_dir}/m.pdmodel", "models.m.variants.fp32.files.model", "unknown placeholder {zoo_dir}"),
        ("models.m.variants.fp32.files.model", 3, "models.m.variants.fp32.files.model", "expected a string"),
        ("models.m.variants.int8.baseline", "fp16", "models.m.variants.int8.baseline", "unknown variant 'fp16'; variants of this model: fp32, int8"),
        ("models.m.variants.int8.baseline", "int8", "models.m.variants.int8.baseline", "cannot be its own baseline"),
        ("models.m.variants.int8.baseline", 7, "models.m.variants.int8.baseline", "expected a string"),
        ("models.m.variants.int8.latency", {"min_duration": "fast"}, "models.m.variants.int8.latency.min_duration", "cannot read 'fast'"),
        ("models.m.budgets.*.target_latency", "10 parsecs", "models.m.budgets.*.target_latency", "cannot read '10 parsecs' as a duration"),
        ("models.m.budgets.*.max_memory", "1G", "models.m.budgets.*.max_memory", "write GB or GiB"),
        ("models.m.budgets.*.max_power", 5, "models.m.budgets.*.max_power", "add a unit, e.g. 5W"),
        ("models.m.budgets.*.max_latency", "5ms", "models.m.budgets.*.max_latency", "did you mean 'target_latency'?"),
        ("models.m.budgets.*.statistic", "median", "models.m.budgets.*.statistic", "allowed: p50, p90"),
        ("models.m.budgets.*.target_latency", "0ms", "models.m.budgets.*.target_latency", "must be more than zero"),
        ("models.m.budgets.*", {}, "models.m.budgets.*", "budget sets no limit"),
        ("models.m.budgets.Jetson Nano", {"max_power": "5W"}, "models.m.budgets.Jetson Nano", "invalid target name"),
        ("models.m.budgets.local", {"deployment": "d.yaml", "max_memory": "1GB"}, "models.m.budgets.local.max_memory", "either deployment or inline"),
        ("models.m.budgets.local", {"deployment": "nowhere.yaml"}, "models.m.budgets.local.deployment", "not found"),
    ],
)
def test_bad_manifest_field(tmp_path: Path, path: str, value: Any, key: str, fragment: str) -> None:
    error = manifest_error(tmp_path, edit(path, value))
    assert error.key == key
    assert fragment in str(error)


def test_baseline_cycle(tmp_path: Path) -> None:
    data = manifest_data()
    variant(data, "fp32")["baseline"] = "int8"
    error = manifest_error(tmp_path, data)
    assert "baseline chain cycles (fp32 -> int8 -> fp32)" in str(error)
    assert error.key == "models.m.variants.fp32.baseline"


def test_baseline_cycle_beside_a_root(tmp_path: Path) -> None:
    data = manifest_data()
    variants = data["models"]["m"]["variants"]
    variants["a"] = paddle_variant("a", baseline="b")
    variants["b"] = paddle_variant("b", baseline="c")
    variants["c"] = paddle_variant("c", baseline="a")
    assert "baseline chain cycles (a -> b -> c -> a)" in str(manifest_error(tmp_path, data))


@pytest.mark.parametrize(
    ("models", "key", "fragment"),
    [
        ({"Tiny CNN": {"variants": {}}}, "models.Tiny CNN", "invalid model name"),
        ({"m": {"input": {"name": "x", "shape": [1], "dtype": "float32"}, "variants": {"int-8": {}}}}, "models.m.variants.int-8", "no '-'"),
        ({"m": "tiny"}, "models.m", "expected a mapping"),
    ],
)
def test_bad_names(tmp_path: Path, models: Any, key: str, fragment: str) -> None:
    data = manifest_data()
    data["models"] = models
    error = manifest_error(tmp_path, data)
    assert error.key == key and fragment in str(error)


def test_runtime_option_must_be_plain(tmp_path: Path) -> None:
    text = yaml.safe_dump(manifest_data(), sort_keys=False).replace("threads: 1", "threads: 2024-01-01", 1)
    error = manifest_error(tmp_path, text)
    assert error.key == "models.m.variants.fp32.runtime_options.threads"
    assert "quote it" in str(error)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "file is empty"),
        ("- 1\n", "top level is a list, not a mapping"),
        ("version: 1\nmodels:\n  m: [\n", "YAML syntax error at line 4"),
    ],
)
def test_bad_manifest_file(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in str(manifest_error(tmp_path, text))


# --- deployment configs ------------------------------------------------------------------


def write_deployment(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jetson-nano-mobilenet.yaml"
    path.write_text(text)
    return path


def test_deployment_config(tmp_path: Path) -> None:
    path = write_deployment(tmp_path, DEPLOYMENT_TEXT)
    budget = load_deployment_config(path)
    assert budget.target_latency_s == pytest.approx(0.010)
    assert budget.max_memory_bytes == 512 * 1024 * 1024
    assert budget.max_power_w == 5.0
    assert budget.statistic == "p90"
    assert budget.source == str(path)
    assert budget.deployment["thread_num"] == 4
    assert budget.monitoring["metrics"] == ("latency", "memory", "throughput")
    assert load_deployment_config(path, statistic="p99").statistic == "p99"


def test_deployment_config_only_performance(tmp_path: Path) -> None:
    budget = load_deployment_config(write_deployment(tmp_path, "performance:\n  max_memory: 256 MiB\n"))
    assert budget.max_memory_bytes == 256 * 1024**2 and budget.target_latency_s is None
    assert dict(budget.deployment) == {} and dict(budget.monitoring) == {}


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        ("target_latency: 10ms", "target_latency: 10 parsecs", "performance.target_latency", "cannot read '10 parsecs' as a duration: use a number with a unit such as 10ms, 2.5s, 800us"),
        ("target_latency: 10ms", "target_latency: 10", "performance.target_latency", "add a unit, e.g. 10ms"),
        ("max_memory: 512MB", "max_memory: lots", "performance.max_memory", "cannot read 'lots' as a size"),
        ("power_consumption: 5W", "power_consumption: 5 watts", "performance.power_consumption", "as a power"),
        ("power_consumption: 5W", "max_power: 5W", "performance.max_power", "allowed keys here: target_latency, max_memory, power_consumption"),
        ("monitoring:", "alerts:", "alerts", "allowed keys here: deployment, performance, monitoring"),
        ('monitoring:\n  enable: true\n  metrics: ["latency", "memory", "throughput"]\n', "monitoring: true\n", "monitoring", "expected a mapping"),
    ],
)
def test_bad_deployment_config(tmp_path: Path, old: str, new: str, key: str, fragment: str) -> None:
    assert old in DEPLOYMENT_TEXT
    path = write_deployment(tmp_path, DEPLOYMENT_TEXT.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        load_deployment_config(path)
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("deployment:\n  hardware: x\n", "performance: missing required key"),
        ("performance: {}\n", "sets no limit"),
        ("", "file is empty"),
        ("performance:\n  target_latency: [10ms\n", "YAML syntax error at line"),
    ],
)
def test_deployment_config_structure(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_deployment_config(write_deployment(tmp_path, text))
    assert fragment in str(caught.value)


def test_bad_deployment_named_through_manifest(tmp_path: Path) -> None:
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites/nano.yaml").write_text(DEPLOYMENT_TEXT.replace("10ms", "10 parsecs"))
    data = edit("models.m.budgets.jetson-nano", {"deployment": "nano.yaml"})
    path = write_manifest(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_manifest(path)
    assert caught.value.source == os.path.join(str(tmp_path / "suites"), "nano.yaml")
    assert caught.value.key == "performance.target_latency"
