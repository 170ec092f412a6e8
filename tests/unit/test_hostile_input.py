"""Property-based tests (hypothesis): hostile target files, manifests and command arguments.

Whatever a target file, a manifest or a device says, the loaders answer with a ConfigError
(one line, naming the file) or a valid value, never another exception; and every argument
the SSH transport sends reaches the device's shell as exactly one word, never as code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.config.manifest import load_manifest
from harness.config.target_files import load_target
from harness.errors import ConfigError
from harness.transport.ssh.command import shell_command

NASTY = st.sampled_from(["; rm -rf /tmp/x", "$(touch /tmp/pwned)", "`id`", "a b", "'", '"', "..", "../../etc",
                         "x\ny", "--help", "-rf", "*", "~root", "${HOME}", "|", "&&", "\\", "é", ""])
TEXT = st.one_of(NASTY, st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
                                max_size=20))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(allow_nan=True), TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.one_of(NASTY, st.sampled_from(
        ["name", "kind", "arch", "connection", "transport", "host", "port", "user", "workdir", "python",
         "runtimes", "power", "tags", "limits", "key_file", "password", "sensor", "options"])), inner, max_size=4)),
    max_leaves=12)
TARGET_KEYS = ["name", "kind", "arch", "description", "connection", "workdir", "python", "runtimes", "power",
               "tags", "limits", "env_capture", "emulated"]
SAFE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _write(path: Path, document: object) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    return path


@SAFE
@given(document=st.dictionaries(st.sampled_from(TARGET_KEYS), VALUES, max_size=8))
def test_any_target_file_is_loaded_or_refused_with_a_config_error(tmp_path: Path, document: dict) -> None:
    path = _write(tmp_path / "board.yaml", document)
    try:
        target = load_target(path)
    except ConfigError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)
    else:
        assert target.name == "board"


@SAFE
@given(workdir=NASTY, user=NASTY, host=NASTY)
def test_hostile_ssh_fields_never_load_unchecked(tmp_path: Path, workdir: str, user: str, host: str) -> None:
    document = {"name": "board", "kind": "arm-cortex", "arch": "aarch64",
                "connection": {"transport": "ssh", "host": host or "h", "user": user or "u"},
                "workdir": workdir or "w", "python": "/usr/bin/python3"}
    try:
        target = load_target(_write(tmp_path / "board.yaml", document))
    except ConfigError:
        return
    assert ".." not in target.workdir.split("/")  # nothing written outside the device's work dir
    assert not (target.connection.user or "").startswith("-") and not target.connection.host.startswith("-")
    assert " " not in target.connection.host and ";" not in target.connection.host


@SAFE
@given(path=NASTY, runtime=TEXT, variant=TEXT)
def test_any_manifest_is_loaded_or_refused_with_a_config_error(tmp_path: Path, path: str, runtime: str,
                                                             variant: str) -> None:
    document = {"version": 1, "models": {"m": {"input": {"name": "x", "shape": [1, 3], "dtype": "float32"},
                                               "variants": {variant or "v": {"kind": "fp32", "format": "onnx",
                                                                             "runtime": runtime,
                                                                             "files": {"model": path}}}}}}
    manifest_path = _write(tmp_path / "models.yaml", document)
    try:
        manifest = load_manifest(manifest_path)
    except ConfigError as error:
        assert str(error).startswith(str(manifest_path)) and "\n" not in str(error)
    else:  # a path is only ever a path: resolved, never expanded by a shell
        (loaded,) = manifest.variants
        assert Path(loaded.files["model"]).is_absolute()


ARGUMENT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=30)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.lists(st.one_of(NASTY, ARGUMENT), max_size=6),
       env_value=st.one_of(NASTY, ARGUMENT))
def test_every_argument_reaches_the_remote_shell_as_one_literal_word(tmp_path: Path, arguments: list[str],
                                                                      env_value: str) -> None:
    echo = [sys.executable, "-c", "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['HX']]))"]
    command = shell_command("board", [*echo, *arguments], str(tmp_path), {"HX": env_value}, wrap=False)
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [arguments, env_value]
    assert not Path("/tmp/pwned").exists()
