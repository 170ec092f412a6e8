"""Target files and the inventory: real files in tmp_path, every bad input named by file and key."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config.target_files import load_inventory, load_target
from harness.config.targets import Inventory, split_jump_host
from harness.errors import ConfigError, UnknownTargetError

REPO = Path(__file__).resolve().parents[2]


def ssh_target(name: str = "board", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "kind": "arm-cortex",
        "arch": "aarch64",
        "connection": {"transport": "ssh", "host": "10.0.0.5", "user": "bench"},
        "workdir": "harness-work",
        "python": "/usr/bin/python3",
    }
    data.update(changes)
    return data


def local_target(name: str = "here", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "kind": "local",
        "arch": "x86_64",
        "connection": {"transport": "local"},
        "workdir": "work",
        "python": "/usr/bin/python3",
    }
    data.update(changes)
    return data


def write(directory: Path, data: dict[str, Any] | str, filename: str | None = None) -> Path:
    if filename is None:
        assert isinstance(data, dict)
        filename = f"{data['name']}.yaml"
    path = directory / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_target(path)
    assert caught.value.source == str(path)
    return caught.value


# --- the shipped files ---------------------------------------------------------------


def test_shipped_local_target_loads_with_absolute_paths() -> None:
    inventory = load_inventory(REPO / "targets")
    local = inventory.targets["local"]
    assert local.kind == "local" and local.connection.transport == "local"
    assert local.python == str(REPO / ".venv/bin/python")
    assert local.workdir == str(REPO / ".harness/work/local")
    assert local.runtimes["paddle-inference"].python == str(REPO / ".venv/bin/python")
    assert local.runtimes["paddle-lite"].python == str(REPO / ".venv-lite/bin/python")
    assert local.runtimes["noop"].python == local.python
    assert local.power.kind == "estimate"  # no sensor here: a labelled CPU-time estimate
    assert set(local.tags) >= {"local", "x86", "cpu"}


def test_shipped_examples_load() -> None:
    examples = load_inventory(REPO / "targets" / "examples")
    assert {"jetson-nano", "rk3588", "x86-gpu"} <= set(examples.targets)
    nano = examples.targets["jetson-nano"]
    assert nano.connection.host == "192.168.55.1" and nano.connection.user == "nvidia"
    assert nano.python == "/usr/bin/python3"
    assert dict(nano.runtimes["paddle-inference"].options) == {"device": "gpu", "tensorrt_precision": "fp16"}
    assert nano.power.kind == "tegrastats" and nano.power.options["interval_ms"] == 100
    assert nano.env_capture.files == ("/etc/nv_tegra_release",)
    assert nano.env_capture.commands == (("nvpmodel", "-q"),)
    rk = examples.targets["rk3588"]
    assert rk.connection.jump_host is not None and rk.power.kind == "command"
    assert rk.runtimes["paddle-lite"].options["threads"] == 4
    gpu = examples.targets["x86-gpu"]
    assert gpu.connection.ssh_config_host is not None and gpu.connection.host is None
    assert gpu.runtimes["onnxruntime"].options["providers"] == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert gpu.power.kind == "nvml"


def test_all_does_not_select_examples() -> None:
    inventory = load_inventory(REPO / "targets")
    names = [target.name for target in inventory.select("all")]
    assert "local" in names
    assert "jetson-nano" not in names


# --- a valid target --------------------------------------------------------------------


def test_ssh_target_defaults_and_kept_paths(tmp_path: Path) -> None:
    target = load_target(write(tmp_path, ssh_target(runtimes={"paddle-lite": "venvs/lite/bin/python"})))
    assert target.connection.port == 22
    assert target.connection.known_hosts is None  # not given: ssh_config StrictHostKeyChecking, else strict
    assert (target.connection.keepalive_s, target.connection.link_timeout_s) == (5.0, 15.0)
    assert target.connection.connect_timeout_s == 10.0
    assert target.workdir == "harness-work"
    assert target.runtimes["paddle-lite"].python == "venvs/lite/bin/python"
    assert target.runtimes["noop"].python == "/usr/bin/python3"
    assert target.limits.max_parallel_jobs == 1 and target.limits.job_timeout_s == 900.0
    assert target.power.kind == "none"
    assert target.tags == () and target.description == "" and not target.emulated
    assert target.source == str(tmp_path / "board.yaml")


def test_units_in_target(tmp_path: Path) -> None:
    data = ssh_target(limits={"job_timeout": "15min", "max_parallel_jobs": 2})
    data["connection"]["connect_timeout"] = "2.5s"
    target = load_target(write(tmp_path, data))
    assert target.limits.job_timeout_s == 900.0
    assert target.limits.max_parallel_jobs == 2
    assert target.connection.connect_timeout_s == 2.5


def test_runtime_forms(tmp_path: Path) -> None:
    runtimes = {
        "paddle-inference": {"options": {"device": "gpu"}},
        "paddle-lite": {"python": "/opt/lite/bin/python", "options": {"threads": 4, "mode": ["a", "b"]}},
        "onnxruntime": "/opt/ort/bin/python",
    }
    target = load_target(write(tmp_path, ssh_target(runtimes=runtimes)))
    assert target.runtimes["paddle-inference"].python == "/usr/bin/python3"
    assert target.runtimes["paddle-lite"].python == "/opt/lite/bin/python"
    assert target.runtimes["paddle-lite"].options["mode"] == ("a", "b")
    assert target.runtimes["onnxruntime"].python == "/opt/ort/bin/python"


def test_target_is_immutable_and_hashable(tmp_path: Path) -> None:
    target = load_target(write(tmp_path, ssh_target(runtimes={"paddle-lite": {"options": {"threads": 4}}})))
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        target.runtimes["paddle-lite"].options["threads"] = 8  # type: ignore[index]
    with pytest.raises(TypeError):
        target.runtimes["x"] = target.runtimes["noop"]  # type: ignore[index]
    assert hash(target) == hash(load_target(target.source))


# --- local paths -------------------------------------------------------------------------


def test_local_paths_resolve_against_the_file(tmp_path: Path) -> None:
    data = local_target(python="../venv/bin/python", workdir="../work", runtimes={"paddle-lite": "./lite/bin/python"})
    target = load_target(write(tmp_path / "targets", data))
    assert target.python == str(tmp_path / "venv/bin/python")
    assert target.workdir == str(tmp_path / "work")
    assert target.runtimes["paddle-lite"].python == str(tmp_path / "targets/lite/bin/python")


def test_local_paths_expand_env_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_TEST_VENV", str(tmp_path / "venv"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    data = local_target(python="${HARNESS_TEST_VENV}/bin/python", workdir="~/work")
    target = load_target(write(tmp_path, data))
    assert target.python == str(tmp_path / "venv/bin/python")
    assert target.workdir == str(tmp_path / "home/work")


def test_unset_env_var_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_TEST_UNSET", raising=False)
    data = local_target(runtimes={"paddle-lite": {"python": "${HARNESS_TEST_UNSET}/bin/python"}})
    error = config_error(write(tmp_path, data))
    assert error.key == "runtimes.paddle-lite.python"
    assert "HARNESS_TEST_UNSET is not set" in str(error)


def test_bare_interpreter_name_is_looked_up_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "mypython"
    program.write_text("#!/bin/sh\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    target = load_target(write(tmp_path, local_target(python="mypython")))
    assert target.python == str(program)
    error = config_error(write(tmp_path, local_target(python="nopython")))
    assert error.key == "python" and "not on PATH" in str(error)


def test_key_file_is_a_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    data = ssh_target()
    data["connection"]["key_file"] = "~/.ssh/id_ed25519"
    target = load_target(write(tmp_path, data))
    assert target.connection.key_file == str(tmp_path / "home/.ssh/id_ed25519")


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"nmae": "x"}, "nmae", "unknown key (did you mean 'name'?); allowed keys here: name, kind"),
        ({"limits": {"max_jobs": 2}}, "limits.max_jobs", "allowed keys here: max_parallel_jobs, job_timeout"),
        ({"env_capture": {"file": ["/x"]}}, "env_capture.file", "did you mean 'files'?"),
        ({"runtimes": {"tensorrt": "/usr/bin/python3"}}, "runtimes.tensorrt", "paddle-inference, paddle-lite, onnxruntime, litert, noop"),
        ({"runtimes": {"paddle-lite": {"pyhton": "/x"}}}, "runtimes.paddle-lite.pyhton", "did you mean 'python'?"),
        ({"runtimes": {"paddle-lite": 3}}, "runtimes.paddle-lite", "expected an interpreter path or a mapping"),
        ({"power": {"sensor": "tegrastats", "interval": 5}}, "power.interval", "allowed keys here: sensor, options"),
        ({"kind": "raspberry"}, "kind", "unknown value 'raspberry'; allowed: arm-cortex, jetson, x86-gpu, x86-cpu, local"),
        ({"arch": "arm64"}, "arch", "allowed: x86_64, aarch64, armv7l"),
        ({"power": "multimeter"}, "power", "allowed: tegrastats, ina3221, rapl, nvml, command, estimate, none"),
        ({"power": {"sensor": "joulescope"}}, "power.sensor", "allowed: tegrastats"),
        ({"power": {"sensor": "command"}}, "power.options.argv", "non-empty list of strings"),
        ({"power": {"sensor": "command", "options": {"argv": "read-power"}}}, "power.options.argv", "non-empty list"),
        ({"tags": "gpu"}, "tags", "expected a list of strings, got a string ('gpu')"),
        ({"tags": ["GPU"]}, "tags[0]", "invalid tag 'GPU'"),
        ({"tags": ["ok", 3]}, "tags[1]", "expected a string, got an integer (3)"),
        ({"emulated": "yes"}, "emulated", "expected true or false"),
        ({"limits": {"max_parallel_jobs": 0}}, "limits.max_parallel_jobs", "0 is too small: use 1 or more"),
        ({"limits": {"max_parallel_jobs": 1.5}}, "limits.max_parallel_jobs", "expected a whole number"),
        ({"limits": {"job_timeout": 900}}, "limits.job_timeout", "has no unit: add a unit, e.g. 10ms"),
        ({"limits": {"job_timeout": "0s"}}, "limits.job_timeout", "must be more than zero"),
        ({"limits": "none"}, "limits", "expected a mapping of keys to values, got a string"),
        ({"description": ["a"]}, "description", "expected a string, got a list"),
        ({"python": 3.6}, "python", "expected a string, got a number (3.6)"),
        ({"workdir": "../elsewhere"}, "workdir", "contains a '..' segment"),
        ({"workdir": "a/../../b"}, "workdir", "contains a '..' segment"),
        ({"workdir": "${HOME}/work"}, "workdir", "environment references are not expanded for ssh targets"),
        ({"python": "~/venv/bin/python"}, "python", "'~' is not expanded for ssh targets"),
        ({"runtimes": {"onnxruntime": "$HOME/ort/bin/python"}}, "runtimes.onnxruntime", "not expanded for ssh targets"),
        ({"python": "/usr/bin/python3\n-c 'x'"}, "python", "NUL or line break"),
        ({"python": "/usr/bin/python3\x00"}, "python", "NUL or line break"),
        ({"python": ""}, "python", "path is empty"),
        ({"python": None}, "python", "missing required key"),
        ({"env_capture": {"commands": ["nvpmodel -q"]}}, "env_capture.commands[0]", "write the command as a list of arguments"),
        ({"env_capture": {"commands": [[]]}}, "env_capture.commands[0]", "non-empty list of strings"),
        ({"env_capture": {"commands": [["ls", 3]]}}, "env_capture.commands[0]", "non-empty list of strings"),
        ({"kind": "jetson", "arch": "x86_64"}, "arch", "a jetson target has arch aarch64, not 'x86_64'"),
        ({"kind": "x86-gpu"}, "arch", "a x86-gpu target has arch x86_64"),
        ({"kind": "local"}, "connection.transport", "a target of kind 'local' must use transport: local"),
        ({"password": "hunter2"}, "password", "passwords are not allowed in target files; use key_file or an ssh-agent"),
        ({"connection": None}, "connection", "missing required key"),
    ],
)
def test_bad_target_field(tmp_path: Path, changes: dict[str, Any], key: str, fragment: str) -> None:
    error = config_error(write(tmp_path, ssh_target(**changes)))
    assert error.key == key
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("connection", "key", "fragment"),
    [
        ({"transport": "ssh", "host": "h", "prot": 22}, "connection.prot", "did you mean 'port'?"),
        ({"transport": "telnet", "host": "h"}, "connection.transport", "unknown value 'telnet'; allowed: local, ssh"),
        ({"host": "h"}, "connection.transport", "missing required key"),
        ({"transport": "ssh"}, "connection.host", "needs host or ssh_config_host"),
        ({"transport": "ssh", "host": "h", "port": "22x"}, "connection.port", "expected a whole number, got a string ('22x')"),
        ({"transport": "ssh", "host": "h", "port": 70000}, "connection.port", "too large: use 65535 or less"),
        ({"transport": "ssh", "host": "-oProxyCommand=x"}, "connection.host", "no leading '-'"),
        ({"transport": "ssh", "host": "a b"}, "connection.host", "not a host name"),
        ({"transport": "ssh", "host": "h", "user": "-l"}, "connection.user", "no leading '-'"),
        ({"transport": "ssh", "host": "h", "known_hosts": "ignore"}, "connection.known_hosts", "allowed: strict, accept-new"),
        ({"transport": "ssh", "host": "h", "connect_timeout": 10}, "connection.connect_timeout", "add a unit"),
        ({"transport": "ssh", "host": "h", "jump_host": "a@b@c"}, "connection.jump_host", "is not 'user@host:port'"),
        ({"transport": "ssh", "host": "h", "jump_host": "b:99999"}, "connection.jump_host", "is not 'user@host:port'"),
        ({"transport": "ssh", "host": "h", "password": "x"}, "connection.password", "passwords are not allowed in target files"),
        (
            {"transport": "ssh", "host": "h", "key_file": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n"},
            "connection.key_file",
            "looks like key material, not a path",
        ),
        ("ssh", "connection", "expected a mapping of keys to values, got a string ('ssh')"),
    ],
)
def test_bad_connection(tmp_path: Path, connection: Any, key: str, fragment: str) -> None:
    error = config_error(write(tmp_path, ssh_target(connection=connection)))
    assert error.key == key
    assert fragment in str(error)


@pytest.mark.parametrize("extra", ["host", "port", "user", "key_file", "jump_host"])
def test_local_transport_forbids_ssh_keys(tmp_path: Path, extra: str) -> None:
    value = 22 if extra == "port" else "x"
    error = config_error(write(tmp_path, local_target(connection={"transport": "local", extra: value})))
    assert error.key == f"connection.{extra}"
    assert "only allowed with transport: ssh" in str(error)


def test_name_must_match_file_stem(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, ssh_target("jetson-nano"), filename="nano.yaml"))
    assert error.key == "name"
    assert "does not match the file name 'nano'" in str(error)
    assert "rename the file to jetson-nano.yaml or set name: nano" in str(error)


def test_name_pattern(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, ssh_target("Board")))
    assert error.key == "name" and "invalid target name 'Board'" in str(error)


def test_missing_name(tmp_path: Path) -> None:
    data = ssh_target()
    del data["name"]
    error = config_error(write(tmp_path, data, filename="board.yaml"))
    assert error.key == "name" and "missing required key" in str(error)


def test_emulated_target_may_mix_kind_and_arch(tmp_path: Path) -> None:
    target = load_target(write(tmp_path, ssh_target(kind="jetson", arch="x86_64", emulated=True)))
    assert target.emulated and target.kind == "jetson"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = "name: board\nkind: arm-cortex\nconnection: {transport: ssh\nworkdir: w\n"
    error = config_error(write(tmp_path, text, filename="board.yaml"))
    assert error.key is None
    assert "YAML syntax error at line" in str(error)
    assert "line 4" in str(error)


def test_yaml_tab_indentation_error(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "name: board\nconnection:\n\ttransport: ssh\n", filename="board.yaml"))
    assert "line 3" in str(error)


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "name: board\nname: other\n", filename="board.yaml"))
    assert "duplicate key 'name'" in str(error) and "line 2" in str(error)


@pytest.mark.parametrize("text", ["", "   \n# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    error = config_error(write(tmp_path, text, filename="board.yaml"))
    assert "file is empty" in str(error)


@pytest.mark.parametrize(("text", "shown"), [("- a\n- b\n", "a list"), ("just text\n", "a string ('just text')")])
def test_top_level_not_a_mapping(tmp_path: Path, text: str, shown: str) -> None:
    error = config_error(write(tmp_path, text, filename="board.yaml"))
    assert f"top level is {shown}, not a mapping" in str(error)


def test_non_string_key(tmp_path: Path) -> None:
    error = config_error(write(tmp_path, "name: board\n1: x\n", filename="board.yaml"))
    assert "key 1 is not a string" in str(error)


def test_unreadable_file(tmp_path: Path) -> None:
    error = config_error(tmp_path / "absent.yaml")
    assert "file not found" in str(error)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "board.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    assert "not UTF-8" in str(config_error(path))


# --- the inventory ---------------------------------------------------------------------


def make_inventory(tmp_path: Path) -> Inventory:
    targets = tmp_path / "targets"
    write(targets, local_target("local", tags=["local", "cpu"]))
    write(targets, ssh_target("jetson-nano", kind="jetson", tags=["gpu", "arm"]))
    write(targets, ssh_target("rk3588", tags=["cpu", "arm"]))
    write(targets / "examples", ssh_target("x86-gpu", kind="x86-gpu", arch="x86_64", tags=["gpu"]))
    (targets / "README.md").write_text("not a target\n")
    return load_inventory(targets)


def test_inventory_loads_only_the_directory(tmp_path: Path) -> None:
    inventory = make_inventory(tmp_path)
    assert list(inventory.targets) == ["jetson-nano", "local", "rk3588"]
    assert inventory.directory == str(tmp_path / "targets")


def test_inventory_reads_yml_too(tmp_path: Path) -> None:
    write(tmp_path, ssh_target("board"), filename="board.yml")
    assert list(load_inventory(tmp_path).targets) == ["board"]


def test_select_all_ignores_examples(tmp_path: Path) -> None:
    names = [target.name for target in make_inventory(tmp_path).select("all")]
    assert names == ["jetson-nano", "local", "rk3588"]


def test_examples_are_an_inventory_of_their_own(tmp_path: Path) -> None:
    make_inventory(tmp_path)
    examples = load_inventory(tmp_path / "targets" / "examples")
    assert [target.name for target in examples.select("all")] == ["x86-gpu"]


def test_select_one_and_comma_list(tmp_path: Path) -> None:
    inventory = make_inventory(tmp_path)
    assert [t.name for t in inventory.select("rk3588")] == ["rk3588"]
    assert [t.name for t in inventory.select("rk3588, local,rk3588")] == ["rk3588", "local"]


def test_select_by_tag(tmp_path: Path) -> None:
    inventory = make_inventory(tmp_path)
    assert [t.name for t in inventory.select("all", tag="cpu")] == ["local", "rk3588"]
    assert [t.name for t in inventory.select("local,jetson-nano", tag="gpu")] == ["jetson-nano"]
    assert inventory.select("local", tag="gpu") == ()


def test_select_unknown_tag(tmp_path: Path) -> None:
    with pytest.raises(UnknownTargetError) as caught:
        make_inventory(tmp_path).select("all", tag="tpu")
    assert "has tag 'tpu'; tags in use: arm, cpu, gpu, local" in str(caught.value)


def test_select_unknown_target_lists_known_ones(tmp_path: Path) -> None:
    inventory = make_inventory(tmp_path)
    with pytest.raises(UnknownTargetError) as caught:
        inventory.select("local,foo")
    directory = str(tmp_path / "targets")
    assert str(caught.value) == (
        f"unknown target 'foo'; known targets in {directory}/: jetson-nano, local, rk3588 "
        f"(add {directory}/foo.yaml or fix the name)"
    )


def test_select_unknown_target_relative_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "targets", local_target("local"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownTargetError) as caught:
        load_inventory("targets").select("foo")
    assert str(caught.value) == "unknown target 'foo'; known targets in targets/: local (add targets/foo.yaml or fix the name)"


def test_select_example_name_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(UnknownTargetError):
        make_inventory(tmp_path).select("x86-gpu")


@pytest.mark.parametrize("spec", ["", " , "])
def test_select_empty_spec(tmp_path: Path, spec: str) -> None:
    with pytest.raises(UnknownTargetError) as caught:
        make_inventory(tmp_path).select(spec)
    assert "empty target selection" in str(caught.value)


def test_duplicate_target_names(tmp_path: Path) -> None:
    write(tmp_path, ssh_target("board"), filename="board.yaml")
    write(tmp_path, ssh_target("board"), filename="board.yml")
    with pytest.raises(ConfigError) as caught:
        load_inventory(tmp_path)
    assert "target 'board' is also declared in" in str(caught.value)
    assert "board.yaml" in str(caught.value) and "board.yml" in str(caught.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_inventory(tmp_path / "nowhere")
    assert caught.value.source == str(tmp_path / "nowhere")
    assert "targets directory not found" in str(caught.value)


def test_bad_file_in_inventory_names_it(tmp_path: Path) -> None:
    write(tmp_path, ssh_target("good"))
    write(tmp_path, ssh_target("bad", kind="toaster"))
    with pytest.raises(ConfigError) as caught:
        load_inventory(tmp_path)
    assert caught.value.source == os.path.join(str(tmp_path), "bad.yaml")


# --- jump hosts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("bastion", (None, "bastion", None)),
        ("me@bastion", ("me", "bastion", None)),
        ("me@bastion.lab:2222", ("me", "bastion.lab", 2222)),
        ("[fe80::1]:22", (None, "fe80::1", 22)),
        ("a@b@c", None),
        ("b:0", None),
        ("b c", None),
        ("me@b;rm -rf", None),
        ("-l@b", None),
    ],
)
def test_split_jump_host(text: str, parts: tuple[str | None, str, int | None] | None) -> None:
    assert split_jump_host(text) == parts
