"""One benchmarking session: selected targets and variants, open devices, the store, the run.

Built from a plain `SessionOptions` value (the pytest plugin builds it from its command-line
options; other front ends can build it directly), so nothing here knows about pytest.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.config.manifest import load_manifest
from harness.config.sections import thaw
from harness.config.sweep_specs import POINT_SEPARATOR, Sweep
from harness.config.target_files import load_inventory
from harness.config.targets import Inventory, Target
from harness.config.variants import Manifest
from harness.errors import ConfigError, HarnessError, UnknownTargetError
from harness.records import RunInfo
from harness.run.device import Device
from harness.run.labgrid_device import open_labgrid_device
from harness.run.run_info import new_run, utc_now
from harness.store import Store, open_store
from harness.transport import open_transport
from harness.transport.labgrid import LabgridSettings


@dataclass(frozen=True)
class SessionOptions:
    target_spec: str  # one name, a comma list, or "all"
    target_tag: str | None
    targets_dir: Path
    manifest_path: Path
    run_label: str | None
    store_url: str
    report_dir: Path
    render_report: bool
    repo_dir: Path
    lock_timeout_s: float = 600.0  # how long to wait for a device another orchestrator holds
    profile_ops: bool = False  # run each runtime's op profiler after the latency loop
    run_id: str | None = None  # preassigned when several processes (pytest-xdist workers) share one run
    is_worker: bool = False  # a pytest-xdist worker: measures, but the controller finishes and reports
    baseline: str | None = None  # --baseline as given: a run id, latest or latest:LABEL
    baseline_run_id: str | None = None  # what it resolved to when the run started (None: nothing to compare)
    targets_dir_given: bool = False  # --targets-dir or $HARNESS_TARGETS_DIR: only that directory is used
    fail_on_regression: bool = False  # a regression against the baseline run fails its test
    resume: str | None = None  # --resume as given: measure only what this stored run is missing
    labgrid: LabgridSettings = LabgridSettings()  # --lg-coordinator, --lg-priority

    def as_record(self) -> dict[str, Any]:
        """The options stored with the run (paths as strings)."""
        from harness.store import redact_url

        record = {key: (str(value) if isinstance(value, Path) else value) for key, value in self.__dict__.items()
                  if key not in ("run_id", "is_worker", "labgrid")}
        record["labgrid"] = dataclasses.asdict(self.labgrid)
        record["store_url"] = redact_url(self.store_url)  # a password in the URL never reaches a report
        return record


def _tell_user(message: str) -> None:
    """Progress that must reach the terminal even while pytest captures output."""
    stream = sys.__stderr__ or sys.stderr  # __stderr__ is None only without a console (pythonw)
    stream.write(f"harness: {message}\n")
    stream.flush()


class HarnessSession:
    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self._inventory: Inventory | None = None
        self._manifest: Manifest | None = None
        self._store: Store | None = None
        self.run: RunInfo | None = None
        self._devices: dict[str, Device] = {}
        self._environments_recorded: set[str] = set()
        self._resumed: dict[tuple[str, str, str], Any] | None = None
        self.notify: Any = _tell_user  # the pytest plugin routes this to its terminal
        self.cli_sweeps: tuple[Sweep, ...] = ()  # --sweep, parsed
        self.baseline_outputs: dict[tuple, Any] = {}  # fidelity: baseline outputs per target, once
        self.swept_variants: dict[str, Any] = {}  # id -> every variant and sweep point parametrized
        self.measurement_count = 0
        self.error_count = 0

    # --- configuration (loaded lazily: `pytest tests/` never touches targets) -------------
    @property
    def inventory(self) -> Inventory:
        if self._inventory is None:
            self._inventory = load_inventory(self.options.targets_dir)
        return self._inventory

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = load_manifest(self.options.manifest_path)
        return self._manifest

    def baseline_of(self, variant: Any) -> Any | None:
        """The variant `variant` is compared with: the manifest's, or a sweep point's (the
        baseline's point at the same value, when that point is parametrized too); None when
        it has none or that point is not part of this session."""
        if variant.baseline is None:
            return None
        wanted = f"{variant.model}-{variant.baseline}"
        found = self.swept_variants.get(wanted) or self._manifest_variant(variant.model, variant.baseline)
        if found is None and POINT_SEPARATOR in variant.baseline:
            # a batch or resolution point whose baseline has no such point: the baseline itself, at
            # another input shape (so a paired measurement says why it cannot pair)
            name, _, change = variant.baseline.partition(POINT_SEPARATOR)
            if change.split("=", 1)[0] in ("batch", "resolution"):
                found = self._manifest_variant(variant.model, name)
        return found

    def _manifest_variant(self, model: str, name: str) -> Any | None:
        return next((v for v in self.manifest.models.get(model, ()) if v.name == name), None)

    def selected_targets(self) -> tuple[Target, ...]:
        """The targets --target names. A name the targets directory lacks is looked up among the
        devices of the lab `harness lab up` brought up on this checkout (unless a directory was
        given: then the error says the lab has such a device)."""
        try:
            return self.inventory.select(self.options.target_spec, self.options.target_tag)
        except UnknownTargetError as unknown:
            lab = lab_inventory()
            names = [n.strip() for n in self.options.target_spec.split(",") if n.strip() and n.strip() != "all"]
            missing = [n for n in names if n not in self.inventory.targets]
            if lab is None or not missing or not all(n in lab.targets for n in missing):
                raise
            if self.options.targets_dir_given:
                raise UnknownTargetError(f"{unknown}; the lab that is up has {', '.join(missing)}: use "
                                         f"--targets-dir {lab.directory}") from None
            self.notify(f"{', '.join(missing)}: from the lab that is up ({lab.directory})")
            combined = {**self.inventory.targets, **{n: lab.targets[n] for n in missing}}
            self._inventory = Inventory(directory=self.inventory.directory, targets=MappingProxyType(combined))
            return self._inventory.select(self.options.target_spec, self.options.target_tag)

    # --- the run --------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.options.store_url)
        return self._store

    def ensure_run(self) -> RunInfo:
        """Create the run record the first time something is measured."""
        if self.run is None:
            run = new_run(self.options.run_label, self.options.as_record(), self.options.repo_dir)
            if self.options.run_id:
                run = dataclasses.replace(run, id=self.options.run_id)
            self.store.create_run(run)  # a resumed run already exists: kept as it is
            self.run = self.store.get_run(run.id) or run
        return self.run

    def already_measured(self, target: str, variant_id: str, metric: str):
        """With --resume: the resumed run's successful record of this measurement, if any."""
        if not self.options.resume or self.run is None:
            return None
        if self._resumed is None:
            self._resumed = {(r.target, r.variant_id, r.metric): r for r in self.store.measurements(self.run.id)
                             if r.status == "ok"}
        return self._resumed.get((target, variant_id, metric))

    def adopt_run(self) -> RunInfo | None:
        """The controller of an xdist session: the run its workers created, if any."""
        if self.run is None and self.options.run_id:
            self.run = self.store.get_run(self.options.run_id)
            if self.run is not None:
                records = self.store.measurements(self.run.id)
                self.measurement_count = sum(1 for r in records if r.status == "ok")
                self.error_count = sum(1 for r in records if r.status != "ok")
        return self.run

    def device(self, target: Target) -> Device:
        """The session's connection to `target`, holding its device lock from first use."""
        if target.name not in self._devices:
            if target.connection.transport == "labgrid":  # the place is the lock: reserved, waited for, acquired
                device = open_labgrid_device(target, self.options.labgrid, self.ensure_run().id,
                                             self.options.lock_timeout_s, self.notify)
                self._devices[target.name] = device
                return device
            device = Device(target, open_transport(target, progress=self.notify))
            try:
                device.lock(self.ensure_run().id, self.options.lock_timeout_s, on_wait=self.notify)
            except HarnessError:
                device.close()
                raise
            self._devices[target.name] = device
            return device
        device = self._devices[target.name]
        # the lock goes with a broken connection: take it again before measuring on
        device.lock(self.ensure_run().id, self.options.lock_timeout_s, on_wait=self.notify)
        return device

    def record_name(self, target: Target) -> str:
        """The target name `target`'s measurements carry: a labgrid board matched by kind is
        ``<target>@<place>`` once its device is open (see `Device`)."""
        device = self._devices.get(target.name)
        return device.record_name if device is not None else target.name

    def record_environment(self, target: Target, agent_env: dict[str, Any]) -> None:
        name = self.record_name(target)
        if name in self._environments_recorded:
            return
        declared = {"kind": target.kind, "arch": target.arch, "description": target.description,
                    "tags": list(target.tags), "emulated": target.emulated, "emulation": target.emulation,
                    "shaping": thaw(target.shaping) or None, "power_sensor": target.power.kind, "source": target.source}
        device = self._devices.get(target.name)
        if device is not None and device.board_meta is not None:
            declared["board"] = device.board_meta
        self.store.record_environment(self.ensure_run().id, name, {"declared": declared, "device": agent_env})
        self._environments_recorded.add(name)

    def push_summary(self) -> str:
        if not self._devices and self.options.run_id:
            return "files were pushed by the pytest-xdist workers"
        files = sum(d.cache.stats.files_sent for d in self._devices.values())
        sent = sum(d.cache.stats.bytes_sent for d in self._devices.values())
        hits = sum(d.cache.stats.cache_hits for d in self._devices.values())
        return f"pushed {files} file(s), {sent / 1e6:.2f} MB; {hits} cache hit(s)"

    def finish(self, status: str | None) -> None:
        """Close the devices; with a status, also mark the run finished in the store."""
        for device in self._devices.values():
            try:
                device.close()
            except HarnessError:
                pass
        if self.run is not None and status is not None:
            self.store.finish_run(self.run.id, utc_now(), status)


def lab_inventory() -> Inventory | None:
    """The targets of the lab `harness lab up` brought up on this checkout, if one is up."""
    from harness.lab.state import targets_dir_of_the_lab_up

    directory = targets_dir_of_the_lab_up()
    if directory is None:
        return None
    try:
        return load_inventory(directory)
    except ConfigError:
        return None  # being rewritten by a `lab up` right now, or damaged: not used
