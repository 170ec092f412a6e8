"""The simulated device lab: real OpenSSH servers standing in for devices.

Used by the harness's own tests and by `harness lab up|down|status` for demos. Its public
surface is what this package exports: `up`, `down`, `status` / `format_status`, `reachable`,
`stop_sshd` (fault injection), `leftovers`, and the state they return (`LabState`,
`DeviceState`); the specs of the devices are `harness.lab.devices`.

Each device of a `LabSpec` becomes, on this machine (root needed):

- a login user ``<prefix>-<device>`` (``useradd -m``, password ``*``) whose home is a tmpfs of
  the device's disk size: "disk full" happens per device;
- cgroups (cpu quota, memory limit, cpuacct) — see `harness.lab.cgroups`;
- a network namespace with its own address on the lab bridge (or a loopback port when
  namespaces cannot be made) and an optional link rate — see `harness.lab.network`;
- its own OpenSSH server (`harness.lab.device_sshd`: own host key, AuthorizedKeysFile in the
  state dir holding the lab's client key, ``AllowUsers`` = the device's user). Before it
  execs, the server joins the device's cgroups and gets a private mount view where ``/root``
  is an empty tmpfs with only the directories the device's interpreters live in (e.g.
  ``/root/.pyenv``) bound in read-only: the interpreters are reachable for the device user
  without opening up root's home;
- its interpreters (`harness.lab.images.build_env`: cached virtual environments built on the
  host, the device's "vendor image"), a ``power`` directory for a simulated sensor, and a
  target file;
- for a device whose power sensor the lab simulates (``ina3221``, see
  `harness.lab.devices.SIMULATED_SENSORS`): a daemon on the host (`harness.lab.power_daemon`),
  ``<host venv python> -m harness.agent.sensors.simulated <power root> <device cpuacct.usage>``
  (PYTHONPATH = the repo), that keeps a Jetson Nano INA3221 sysfs tree (JetPack 4 iio layout)
  under ``power/`` following the device's cgroup CPU usage; it runs outside the device's
  cgroups (a real sensor costs the board no CPU), its pid is in the state file, its log in
  ``devices/<name>/power.log``, and the tree is world-readable so the device user's agent
  reads it (the target file says ``power: {sensor: ina3221, options: {root: <power root>}}``).

A device of less than one core has its CFS period chosen by a calibration run before its sshd
starts (`harness.lab.shaping`): what the quota does to per-inference latency is measured, kept
in the state file, and stated in the target file's ``shaping:`` and in `status`.

State dir layout (default ``.harness/lab`` in the repo)::

    state.json                   what is up: enough for `down` / `status` from a fresh process
    keys/lab_ed25519[.pub]       the client key every device authorises (kept across downs)
    devices/<name>/sshd/         sshd_config, host key (kept: host keys stay stable), log
    devices/<name>/authorized_keys
    devices/<name>/power/        root of the device's simulated power sensor (sys/bus/i2c/...)
    devices/<name>/power.log     the simulated sensor daemon's log
    targets/<name>.yaml          one target file per device (for --targets-dir)
    targets/known_hosts          the devices' host keys (strict host key checking)
    targets/ssh_config           Host entries for plain ssh: ssh -F targets/ssh_config <name>

Built interpreter images and their wheels are cached in the *default* state dir's ``cache/``
(`default_cache_dir`), shared by every lab of this checkout and kept across downs.

`down` removes every process, namespace, veth, bridge, cgroup, mount, user and nft table the
lab made, plus the target files and the state file; keys, host keys and the image cache stay.

Modules, one concern each: `devices` (specs), `images` (built interpreters), `rootfs` (an
emulated arch's root filesystem), `state` (the state file), `plan` (a spec's names and
addresses), `bring_up` / `tear_down` / `live_status` (up / down / status), `users` (login
users, home tmpfs), `cgroups` and `shaping` (CPU and memory), `network`, `device_sshd` (a
device's server) with `mount_view` and `chroot` (what it sees), `power_daemon` (the
simulated sensor), `target_files` (targets/), `processes`, `sshd` (a private OpenSSH server),
`postgres` (a private PostgreSQL cluster: the lab's results database), `cli`.
"""

from harness.lab.bring_up import up
from harness.lab.device_sshd import stop_sshd
from harness.lab.live_status import format_status, reachable, status
from harness.lab.state import DEFAULT_STATE_DIR, DeviceState, LabState, default_cache_dir
from harness.lab.tear_down import down, leftovers

__all__ = [
    "DEFAULT_STATE_DIR",
    "DeviceState",
    "LabState",
    "default_cache_dir",
    "down",
    "format_status",
    "leftovers",
    "reachable",
    "status",
    "stop_sshd",
    "up",
]
