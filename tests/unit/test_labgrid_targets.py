"""labgrid targets without a coordinator: their target files, the coordinator and priority a
session uses, what `labgrid-client`'s output is read as, how xdist groups their tests, and
the record of this machine's acquisitions. (The coordinator itself: tests/integration/test_labgrid.py.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config.target_files import load_target
from harness.errors import ConfigError
from harness.plugin.hooks import xdist_group
from harness.transport.labgrid import LabgridSettings, acquisitions, coordinator_for
from harness.transport.labgrid.client import LabgridClient, parse_places, parse_reservations
from harness.transport.labgrid.settings import priority_for


def labgrid_file(tmp_path: Path, **connection: Any) -> Path:
    path = tmp_path / "orin.yaml"
    path.write_text(yaml.safe_dump({"name": "orin", "kind": "jetson", "arch": "aarch64",
                                    "connection": {"transport": "labgrid", **connection},
                                    "workdir": "harness-work", "python": "/usr/bin/python3"}))
    return path


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_target(path)
    return caught.value


def test_a_place_target_reads_its_place_coordinator_priority_and_ssh_settings(tmp_path: Path) -> None:
    target = load_target(labgrid_file(tmp_path, place="jetson-7", coordinator="lab-gw:20408", priority=5,
                                      key_file="keys/lab", known_hosts_file="known_hosts", connect_timeout="5s"))
    spec = target.connection.labgrid
    assert spec is not None and spec.place == "jetson-7" and spec.coordinator == "lab-gw:20408"
    assert spec.priority == 5.0 and spec.filters == {"name": "jetson-7"}
    assert target.connection.transport == "labgrid" and target.connection.host is None
    assert target.connection.key_file == str(tmp_path / "keys" / "lab")  # a path on this machine, resolved
    assert target.connection.connect_timeout_s == 5.0


def test_a_match_target_filters_on_its_tags(tmp_path: Path) -> None:
    spec = load_target(labgrid_file(tmp_path, match={"board": "orin-nano", "rack": 2})).connection.labgrid
    assert spec is not None and spec.place is None and spec.filters == {"board": "orin-nano", "rack": "2"}
    assert spec.describe() == "any place with board=orin-nano rack=2"


@pytest.mark.parametrize(("connection", "key", "words"), [
    ({}, "connection.place", "exactly one of place and match"),
    ({"place": "a", "match": {"board": "x"}}, "connection.place", "exactly one of place and match"),
    ({"match": {}}, "connection.match", "mapping of place tags"),
    ({"match": {"Board": "x"}}, "connection.match.Board", "not a labgrid tag name"),
    ({"match": {"name": "x"}}, "connection.match.name", "use place: instead"),
    ({"match": {"board": "two words"}}, "connection.match.board", "no spaces"),
    ({"place": "-p"}, "connection.place", "not a labgrid place name"),
    ({"place": "a", "coordinator": "a b:1"}, "connection.coordinator", "HOST:PORT"),
    ({"place": "a", "host": "10.0.0.5"}, "connection.host", "unknown key"),
    ({"place": "a", "priority": "high"}, "connection.priority", "expected a number"),
])
def test_a_bad_labgrid_connection_names_the_key(tmp_path: Path, connection: dict[str, Any], key: str,
                                                 words: str) -> None:
    error = error_of(labgrid_file(tmp_path, **connection))
    assert error.key == key and words in str(error), str(error)
    assert str(labgrid_file(tmp_path, **connection)) in str(error)


def test_the_coordinator_comes_from_the_option_then_the_file_then_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    declared = load_target(labgrid_file(tmp_path, place="a", coordinator="file-host:1", priority=3))
    bare = load_target(labgrid_file(tmp_path, place="a"))
    monkeypatch.setenv("LG_COORDINATOR", "env-host:2")
    assert coordinator_for(declared, LabgridSettings(coordinator="cli-host:3")) == ("cli-host:3", "from --lg-coordinator")
    assert coordinator_for(declared, LabgridSettings())[0] == "file-host:1"
    assert coordinator_for(bare, LabgridSettings()) == ("env-host:2", "from $LG_COORDINATOR")
    monkeypatch.delenv("LG_COORDINATOR")
    assert coordinator_for(bare, LabgridSettings()) == ("127.0.0.1:20408", "labgrid's default address")
    assert priority_for(declared, LabgridSettings()) == 3.0
    assert priority_for(declared, LabgridSettings(priority=-1.0)) == -1.0


def test_a_matched_boards_tests_are_grouped_per_model_a_named_place_per_target(tmp_path: Path) -> None:
    class Variant:
        model = "mobilenet"

    matched = load_target(labgrid_file(tmp_path, match={"board": "orin"}))
    named = load_target(labgrid_file(tmp_path, place="jetson-7"))
    assert xdist_group(matched, Variant()) == "orin/mobilenet"  # workers (boards) split by model
    assert xdist_group(named, Variant()) == "orin"  # one board: one worker at a time


SHOW = """Place 'pa':
  tags: board=orin, rack=2
  matches:
    exp1/board-a/*
  acquired: vm/root
  acquired resources:
    exp1/board-a/NetworkService/NetworkService
  created: 2026-12-04 18:30:23.274825
  changed: 2026-12-04 18:30:30.052828
  reservation: LHOSUW6P9T
Acquired resource 'NetworkService' (exp1/board-a/NetworkService/NetworkService):
  {'acquired': 'pa',
   'avail': True,
   'cls': 'NetworkService',
   'params': {'address': '10.0.0.5',
              'extra': {'proxy': 'localhost', 'proxy_required': False},
              'port': 2222,
              'username': 'root'}}
Place 'pb':
  matches:
    exp1/board-b/*
  acquired: None
  acquired resources:
  created: 2026-12-04 18:30:24.185037
  changed: 2026-12-04 18:30:24.867304
"""


def test_show_output_is_read_into_places_and_their_network_service() -> None:
    first, second = parse_places(SHOW)
    assert (first.name, first.acquired, first.reservation) == ("pa", "vm/root", "LHOSUW6P9T")
    assert first.tags == {"board": "orin", "rack": "2"}
    service = first.network_service()
    assert service is not None and (service.exporter, service.group) == ("exp1", "board-a")
    assert service.params["address"] == "10.0.0.5" and service.params["port"] == 2222 and service.acquired
    assert (second.name, second.acquired, second.reservation, second.resources) == ("pb", None, None, ())


def test_reservations_and_wait_output_are_read_alike() -> None:
    listing = """Reservation 'KHZ39KBPG1':
  owner: vm/root
  token: KHZ39KBPG1
  state: allocated
  prio: 5.0
  filters:
    main: board=orin
  allocations:
    main: pb
  created: 2026-12-04 18:30:25.538678
  timeout: 2026-12-04 18:31:25.538752
Reservation 'AAAA':
  owner: vm/other
  token: AAAA
  state: waiting
  filters:
    main: name=pa
  created: 2026-12-04 18:30:25.538678
  timeout: 2026-12-04 18:31:25.538752
"""
    found = parse_reservations(listing)
    assert [(r.token, r.state, r.prio, r.allocated) for r in found] == [
        ("KHZ39KBPG1", "allocated", 5.0, ("pb",)), ("AAAA", "waiting", 0.0, ())]
    waited = ("\n".join(line.strip() for line in listing.splitlines()[1:10]) + "\n") * 2  # `wait` prints each poll
    assert [r.state for r in parse_reservations(waited)] == ["allocated", "allocated"]


def test_a_dead_process_acquisition_is_orphaned_a_live_one_is_not(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(acquisitions.STATE_ENV, str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for place, pid in (("dead", int(gone.stdout)), ("alive", os.getpid())):
        acquisitions.remember(acquisitions.Acquisition(coordinator="127.0.0.1:20408", place=place, token=f"T{place}",
                                                       owner="h/u", pid=pid, host=socket.gethostname(), run="r",
                                                       target="orin", since="now"))
    assert [a.place for a in acquisitions.orphaned("127.0.0.1:20408")] == ["dead"]
    acquisitions.forget("127.0.0.1:20408", "dead", "other-token")  # not the one written: kept
    assert [a.place for a in acquisitions.orphaned("127.0.0.1:20408")] == ["dead"]
    acquisitions.forget("127.0.0.1:20408", "dead", "Tdead")
    assert acquisitions.orphaned("127.0.0.1:20408") == []


def test_a_missing_labgrid_client_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_LABGRID_CLIENT", str(tmp_path / "nope"))
    with pytest.raises(Exception, match="is not an executable labgrid-client"):
        LabgridClient("127.0.0.1:1", "test")


def test_the_lab_on_labgrid_writes_place_targets_and_a_match_for_a_shared_kind(tmp_path: Path) -> None:
    from harness.lab.devices import DEFAULT_LAB
    from harness.lab.plan import new_state, plan_device
    from harness.lab.target_files import _write_match_targets, target_document

    state = new_state(tmp_path, DEFAULT_LAB, "loopback", "test")
    Path(state.targets_dir).mkdir(parents=True)
    specs = {d.name: d for d in DEFAULT_LAB.devices}
    for spec in specs.values():
        state.devices[spec.name] = plan_device(state, DEFAULT_LAB, spec, None)
        state.devices[spec.name].python = "/usr/bin/python3"  # what bring-up fills in
    state.labgrid = {"coordinator": "127.0.0.1:20999"}
    documents = {name: target_document(state, d, specs[name]) for name, d in state.devices.items()}
    assert documents["jetson-nano"]["connection"]["transport"] == "labgrid"
    assert documents["jetson-nano"]["connection"]["place"] == "jetson-nano"
    _write_match_targets(state, documents, "now")
    (written,) = state.labgrid["match_targets"]  # edge-cpu and slow-link are both x86-cpu
    target = load_target(written)
    assert target.name == "any-x86-cpu" and target.connection.labgrid is not None
    assert dict(target.connection.labgrid.match) == {"kind": "x86-cpu"}
    assert target.connection.labgrid.coordinator == "127.0.0.1:20999"
    documents["slow-link"]["python"] = "/other/python"  # boards no longer alike: no match target
    _write_match_targets(state, documents, "now")
    assert not Path(written).exists() and state.labgrid["match_targets"] == []
