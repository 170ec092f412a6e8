"""The labgrid half of a ``transport: labgrid`` connection: which place, which coordinator.

    connection: {transport: labgrid, place: jetson-7}
    connection: {transport: labgrid, match: {board: orin-nano}, coordinator: lab-gw:20408, priority: 10}

The SSH half (key_file, known_hosts, timeouts) is read like an ssh target's by
harness.config.target_files; the board's address, user and port are not in the file: they come
from the place's NetworkService once the run acquires it (docs/lab-scale.md).
"""

from __future__ import annotations

import re
from types import MappingProxyType

from harness.config.sections import Section, describe, join_key
from harness.config.targets import LabgridPlace
from harness.errors import ConfigError

LABGRID_KEYS = ("place", "match", "coordinator", "priority")
TAG_KEY = re.compile(r"[a-z][a-z0-9_]+")
"""labgrid's own rule for tag keys (labgrid/remote/common.py)."""
_TAG_VALUE = re.compile(r"[A-Za-z0-9_.:-]+")
_PLACE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_COORDINATOR = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(:\d{1,5})?")


def check_coordinator(value: str, source: str, key: str) -> str:
    """``host[:port]`` (labgrid's default port is 20408); an error names where it came from."""
    if not _COORDINATOR.fullmatch(value) or value.startswith("-"):
        raise ConfigError(source, key, f"{value!r} is not a coordinator address: write HOST or HOST:PORT "
                          "(e.g. lab-gw.example:20408)")
    return value


def read_labgrid_place(section: Section) -> LabgridPlace:
    """``place`` or ``match`` (exactly one), ``coordinator`` and ``priority`` (both optional)."""
    has_place, has_match = section.has("place"), section.has("match")
    if has_place == has_match:
        raise section.error("place", "a labgrid target names one place (place: jetson-7) or a kind of board "
                            "(match: {board: orin-nano}): give exactly one of place and match")
    place = None
    match: dict[str, str] = {}
    if has_place:
        place = section.get_str("place")
        if not _PLACE.fullmatch(place):
            raise section.error("place", f"{place!r} is not a labgrid place name (letters, digits, '.', '_', '-')")
    else:
        raw = section.raw("match")
        if not isinstance(raw, dict) or not raw:
            raise section.error("match", f"expected a mapping of place tags, e.g. {{board: orin-nano}}, "
                                f"got {describe(raw)}")
        for tag, value in raw.items():
            key = join_key(section.key("match"), str(tag))
            if not isinstance(tag, str) or not TAG_KEY.fullmatch(tag) or tag == "name":
                raise ConfigError(section.source, key, f"{tag!r} is not a labgrid tag name (lower-case letters, "
                                  "digits and '_', two or more; 'name' is the place name: use place: instead)")
            if isinstance(value, bool) or not isinstance(value, str | int) or not _TAG_VALUE.fullmatch(str(value)):
                raise ConfigError(section.source, key, f"expected a tag value such as orin-nano (no spaces or '='), "
                                  f"got {describe(value)}")
            match[tag] = str(value)
    coordinator = section.get_str("coordinator", None)
    if coordinator is not None:
        check_coordinator(coordinator, section.source, section.key("coordinator"))
    return LabgridPlace(place=place, match=MappingProxyType(match), coordinator=coordinator,
                        priority=section.get_float("priority", 0.0))


__all__ = ["LABGRID_KEYS", "TAG_KEY", "check_coordinator", "read_labgrid_place"]
