"""`harness lab up|down|status`: the simulated device lab from the command line.

    harness lab up     [--state-dir DIR] [--device NAME ...] [--with-arm] [--skip-installs] [--network MODE]
                       [--labgrid]
    harness lab down   [--state-dir DIR]
    harness lab status [--state-dir DIR] [--json]

`add_lab_commands(subparsers)` registers them on the `harness` parser's subparsers; each
sets ``func`` (args -> exit status) like the other commands. Lab failures are LabError (a
HarnessError): the main entry point prints the one-line message.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from harness.lab import down, format_status, status, up
from harness.lab.devices import ARM64_QEMU, DEFAULT_LAB, WITH_ARM_LAB
from harness.lab.state import STATE_DIR_ENV, lab_state_dir


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir) if args.state_dir else lab_state_dir()


def _say(line: str) -> None:
    print(line, flush=True)


def cmd_lab_up(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    devices = list(args.device or [])
    with_arm = args.with_arm or ARM64_QEMU.name in devices
    if with_arm and devices and ARM64_QEMU.name not in devices:
        devices.append(ARM64_QEMU.name)
    up(state_dir, WITH_ARM_LAB if with_arm else DEFAULT_LAB, devices=devices or None,
       install=not args.skip_installs, network_mode=args.network, progress=_say, labgrid=args.labgrid)
    if with_arm:
        _say(f"lab: {ARM64_QEMU.name}: install its runtimes with `harness targets setup {ARM64_QEMU.name} "
             f"--targets-dir {Path(state_dir).resolve() / 'targets'}` (wheels resolved on this host, pushed over SSH)")
    for line in format_status(status(state_dir), state_dir):
        _say(line)
    return 0


def cmd_lab_down(args: argparse.Namespace) -> int:
    down(_state_dir(args), progress=_say)
    return 0


def cmd_lab_status(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    state = status(state_dir)
    if args.json:
        if state is None:
            print(json.dumps({"up": False, "state_dir": str(Path(state_dir).resolve())}))
            return 1
        data = state.to_dict()
        for name, device in state.devices.items():
            data["devices"][name].update(sshd_alive=device.sshd_alive, reachable=device.reachable,
                                         usage=asdict(device.usage) if device.usage else None,
                                         disk_used=device.disk_used)
        print(json.dumps({"up": True, **data}, indent=2))
    else:
        for line in format_status(state, state_dir):
            _say(line)
    if state is None:
        return 1
    healthy = all(d.sshd_alive and d.reachable for d in state.devices.values())
    return 0 if healthy else 1


def add_lab_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `lab up|down|status` on the `harness` subparsers; returns the `lab` parser."""
    names = ", ".join(d.name for d in DEFAULT_LAB.devices)
    lab = subparsers.add_parser(
        "lab", help="the simulated device lab (real OpenSSH servers in network namespaces, cgroup-shaped)",
        description=f"A lab of simulated devices ({names}) on this machine; needs root. "
                    f"State, keys and generated target files live in the state dir "
                    f"(default: ${STATE_DIR_ENV} or .harness/lab in the repo).",
    )
    actions = lab.add_subparsers(dest="action", required=True)

    def state_dir_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--state-dir", default=None, help=f"default: ${STATE_DIR_ENV} or <repo>/.harness/lab")

    up_parser = actions.add_parser("up", help="bring the lab's devices up (idempotent) and write their target files")
    state_dir_option(up_parser)
    up_parser.add_argument("--device", action="append", metavar="NAME",
                           choices=[d.name for d in WITH_ARM_LAB.devices],
                           help=f"only this device (repeatable; default: all of {names})")
    up_parser.add_argument("--with-arm", action="store_true",
                           help=f"also bring up {ARM64_QEMU.name}, an emulated aarch64 device: a Debian arm64 root "
                                "filesystem (debootstrap, once: ~3-5 min, 300 MB) run by qemu-user; needs "
                                "qemu-user-static, binfmt-support and debootstrap")
    up_parser.add_argument("--skip-installs", action="store_true",
                           help="do not download runtimes for images not cached yet "
                                "(their devices get a bare interpreter)")
    up_parser.add_argument("--network", choices=("auto", "netns", "loopback"), default="auto",
                           help="auto: namespaces if possible, else loopback ports (default)")
    up_parser.add_argument("--labgrid", action="store_true",
                           help="also run a labgrid coordinator and exporter on this machine, one place per "
                                "device, and write target files that reserve the devices through them "
                                "(transport: labgrid; any-<kind> targets match any free device of a kind)")
    up_parser.set_defaults(func=cmd_lab_up)

    down_parser = actions.add_parser("down", help="stop and remove everything the lab made")
    state_dir_option(down_parser)
    down_parser.set_defaults(func=cmd_lab_down)

    show = actions.add_parser("status", help="per device: sshd, address, reachability, cgroup usage, OOM kills")
    state_dir_option(show)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=cmd_lab_status)
    return lab


__all__ = ["add_lab_commands"]
