"""`harness targets setup`'s pieces that need no device: platform tags, the target file's
``setup`` section, the deterministic pack, and the device-side installer run for real under
this host's Python and under Python 3.6 (the oldest interpreter a device may have)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.config.target_files import load_target
from harness.errors import ConfigError, HarnessError
from harness.run.device_setup import ENV_MARKER, INSTALL_CODE, DevicePython, _pack, env_key

BOOKWORM_ARM64 = DevicePython((3, 11, 2), "cpython", "aarch64", ("glibc", "2.36"), "/usr/bin/python3")
JETPACK4 = DevicePython((3, 6, 9), "cpython", "aarch64", ("glibc", "2.27"), "/usr/bin/python3")


def py36() -> str | None:
    done = subprocess.run(["pyenv", "prefix", "3.6.15"], capture_output=True, text=True)
    path = Path(done.stdout.strip(), "bin", "python3.6")
    return str(path) if done.returncode == 0 and path.exists() else None


def test_platform_tags_follow_the_devices_glibc_and_machine() -> None:
    tags = BOOKWORM_ARM64.platform_tags()
    assert tags[0] == "manylinux_2_36_aarch64" and tags[-1] == "manylinux2014_aarch64"
    assert "manylinux_2_28_aarch64" in tags and "manylinux_2_17_aarch64" in tags
    assert "manylinux_2_37_aarch64" not in tags and not any("x86_64" in tag for tag in tags)
    assert JETPACK4.platform_tags()[0] == "manylinux_2_27_aarch64"
    old_x86 = DevicePython((3, 8, 0), "cpython", "x86_64", ("glibc", "2.17"), "/usr/bin/python3")
    assert old_x86.platform_tags()[-2:] == ["manylinux2010_x86_64", "manylinux1_x86_64"]


def test_abi_tags_carry_the_m_before_python_38() -> None:
    assert (JETPACK4.abi, BOOKWORM_ARM64.abi, JETPACK4.short) == ("cp36m", "cp311", "3.6")


def test_a_non_glibc_device_gets_a_clear_error() -> None:
    alpine = DevicePython((3, 11, 0), "cpython", "aarch64", ("", ""), "/usr/bin/python3")
    with pytest.raises(HarnessError, match="only glibc"):
        alpine.platform_tags()


def test_env_key_changes_with_requirements_and_platform() -> None:
    key = env_key(["onnxruntime==1.31.1"], BOOKWORM_ARM64)
    assert key == env_key(["onnxruntime==1.31.1"], BOOKWORM_ARM64)
    assert key != env_key(["onnxruntime==1.30.0"], BOOKWORM_ARM64)
    assert key != env_key(["onnxruntime==1.31.1"], JETPACK4)


def test_pack_is_deterministic(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("VALUE = 42\n")
    (site / "pkg" / "data.bin").write_bytes(os.urandom(1000))
    digests = []
    for name in ("a.tar.gz", "b.tar.gz"):
        _pack(site, tmp_path / name)
        os.utime(site / "pkg" / "__init__.py", (1, 1))  # mtimes never reach the archive
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert digests[0] == digests[1]


@pytest.mark.parametrize("interpreter", ["host", "python3.6"])
def test_the_device_side_installer_makes_a_working_environment(tmp_path: Path, interpreter: str) -> None:
    python = sys.executable if interpreter == "host" else py36()
    if python is None:
        pytest.skip("pyenv's Python 3.6.15 is not installed")
    site = tmp_path / "site"
    (site / "harness_demo_pkg").mkdir(parents=True)
    (site / "harness_demo_pkg" / "__init__.py").write_text("VALUE = 42\n")
    tarball = tmp_path / "site-packages.tar.gz"
    _pack(site, tarball)
    env = tmp_path / "work" / "envs" / "onnxruntime"
    env.parent.mkdir(parents=True)
    marker = json.dumps({"key": "k1", "packages": ["x==1"]})
    for _ in range(2):  # a second install replaces the first
        done = subprocess.run([python, "-c", INSTALL_CODE, str(tarball), str(env), ENV_MARKER], input=marker,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert json.loads((env / ENV_MARKER).read_text())["key"] == "k1"
    code = "import sys, harness_demo_pkg; print(harness_demo_pkg.VALUE, sys.prefix)"
    done = subprocess.run([str(env / "bin" / "python3"), "-c", code], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    value, prefix = done.stdout.split()
    assert value == "42" and Path(prefix) == env
    assert not (tmp_path / "work" / "envs" / "onnxruntime.partial").exists()


def test_the_installer_refuses_an_archive_that_escapes(tmp_path: Path) -> None:
    import tarfile

    evil = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(evil, "w:gz") as archive:
        archive.add(str(payload), arcname="../../outside")
    env = tmp_path / "envs" / "onnxruntime"
    env.parent.mkdir()
    done = subprocess.run([sys.executable, "-c", INSTALL_CODE, str(evil), str(env), ENV_MARKER], input="{}",
                          capture_output=True, text=True)
    assert done.returncode != 0 and "refusing archive member '../../outside'" in done.stderr
    assert not env.exists() and not (tmp_path / "outside").exists()


def _target(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "board.yaml"
    path.write_text(textwrap.dedent("""\
        name: board
        kind: arm-cortex
        arch: aarch64
        connection: {transport: ssh, host: 10.0.0.2, user: me, key_file: /tmp/k}
        workdir: harness-work
        python: /usr/bin/python3
        """) + textwrap.dedent(extra))
    return path


def test_setup_runtimes_get_the_environment_interpreter(tmp_path: Path) -> None:
    target = load_target(_target(tmp_path, """\
        emulated: "qemu-user aarch64"
        setup:
          onnxruntime: [onnxruntime==1.31.1, "numpy>=1.26,<3"]
        """))
    assert target.setup["onnxruntime"] == ("onnxruntime==1.31.1", "numpy>=1.26,<3")
    declared = target.runtimes["onnxruntime"]
    assert declared.setup_env == "envs/onnxruntime" and declared.python == "envs/onnxruntime/bin/python3"
    assert (target.emulated, target.emulation) == (True, "qemu-user aarch64")


@pytest.mark.parametrize("requirement", ["-r /etc/passwd", "--index-url=https://evil", "pkg @ https://x/y.whl",
                                         "", "a\nb", "$(reboot)"])
def test_setup_refuses_anything_but_plain_requirements(tmp_path: Path, requirement: str) -> None:
    with pytest.raises(ConfigError, match=r"board\.yaml: setup\.onnxruntime\[0\]|setup\.onnxruntime"):
        load_target(_target(tmp_path, f"setup:\n  onnxruntime: [{json.dumps(requirement)}]\n"))


def test_a_runtime_both_declared_and_set_up_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both declared under runtimes"):
        load_target(_target(tmp_path, """\
            runtimes: {onnxruntime: /usr/bin/python3}
            setup: {onnxruntime: [onnxruntime]}
            """))


def test_setup_for_an_unknown_runtime_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        load_target(_target(tmp_path, "setup: {tensorflow: [tensorflow]}\n"))
