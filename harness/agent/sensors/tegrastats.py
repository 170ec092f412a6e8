"""Jetson power through `tegrastats --interval <ms>`, one line per interval.

Every format JetPack has printed (see tests/unit/fixtures/power/tegrastats/):

- JetPack 4, Nano:  ``... POM_5V_IN 933/933 POM_5V_GPU 0/0 POM_5V_CPU 158/158``
  (milliwatts, current/average, no unit)
- JetPack 4, TX2:   ``... VDD_SYS_GPU 153/153 ... VDD_IN 1038/1134 VDD_SYS_CPU 306/314 ...``
- JetPack 4, AGX Xavier: ``GPU 1155/1155 CPU 385/385 SOC 2504/2503 CV 0/0 VDDRQ 192/192
  SYS5V 2692/2692``: no board-total rail.
- JetPack 5, Orin: lines start with ``MM-DD-YYYY HH:MM:SS``; ``VDD_GPU_SOC 2390mW/2390mW``
- newer JetPack: three values per rail ``5139mW/5139mW/5139mW``; ``GR3D_FREQ 12%@[1300,1300]``

The first value of a rail is the instantaneous reading (used); tegrastats documents the
second as the running average; a third, printed by newer releases, is kept as reported
in extra["rails_mw_reported"] without an interpretation of its own.

Board total (describe()["total_rail"]): VDD_IN or POM_5V_IN when the line has one. Without
one (AGX Xavier; AGX Orin, whose VIN_SYS_5V0 is the 5 V system rail only, not the module
input: the GPU/SOC and CPU/CV rails are fed beside it), total_w is None and
extra["rails_sum_w"] carries the sum of the listed rails, which is a lower bound.
``power.options.total_rail`` names another rail as the total where the lab knows better.
"""

import re

from .errors import SensorError
from .sensor import make_sample
from .streaming import StreamingSensor

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
UNUSED_RAILS = ("NC",)

_TIMESTAMP = re.compile(r"^\s*(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d)\s+")
# NAME cur/avg[/third], each milliwatts with an optional "mW"; a lookahead keeps
# "RAM 1215/3964MB" and "IRAM 0/252kB" out.
_RAIL = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?:/(\d+)(?:mW)?)?(?=\s|$)")
_TEMP = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C(?=\s|$)")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB(?: ?\(cached (\d+)MB\))?")
_CPU = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?")
_LOAD_FREQ = re.compile(r"^(\d+)%(?:@(\d+))?$")
_ENGINE = re.compile(r"\b(EMC_FREQ|GR3D_FREQ) (\d+)%(?:@(\[[\d,]*\]|\d+))?")
NO_SENSOR_TEMP_C = -256.0  # what tegrastats prints for a thermal zone that is switched off


def _freqs(text):
    # type: (str) -> list[int]
    if not text:
        return []
    return [int(part) for part in text.strip("[]").split(",") if part.strip()]


def parse_line(line):
    # type: (str) -> dict
    """Decode one tegrastats line: {"rails_mw": {name: [values]}, "extra": {...}}."""
    extra = {}
    stamp = _TIMESTAMP.match(line)
    if stamp:
        extra["tegrastats_time"] = stamp.group(1)
    ram = _RAM.search(line)
    if ram:
        extra["ram_used_mb"], extra["ram_total_mb"] = int(ram.group(1)), int(ram.group(2))
    swap = _SWAP.search(line)
    if swap:
        extra["swap_used_mb"], extra["swap_total_mb"] = int(swap.group(1)), int(swap.group(2))
    cpu = _CPU.search(line)
    if cpu:
        shared_freq = int(cpu.group(2)) if cpu.group(2) else None  # old "cpu [..]@408" form
        cores = []  # type: list[dict[str, int | None] | None]  # None: a core powered down
        for item in cpu.group(1).split(","):
            match = _LOAD_FREQ.match(item.strip())
            if match is None:  # "off" (core powered down) or anything unexpected
                cores.append(None)
                continue
            freq = int(match.group(2)) if match.group(2) else shared_freq
            cores.append({"load_pct": int(match.group(1)), "freq_mhz": freq})
        extra["cpu"] = cores
    for name, load, freq in _ENGINE.findall(line):
        key = "emc" if name == "EMC_FREQ" else "gpu"
        extra[key + "_load_pct"] = int(load)
        extra[key + "_freq_mhz"] = _freqs(freq)
    temps = {}
    for name, value in _TEMP.findall(line):
        celsius = float(value)
        temps[name] = None if celsius <= NO_SENSOR_TEMP_C else celsius
    if temps:
        extra["temps_c"] = temps
    rails = {}
    for name, current, average, third in _RAIL.findall(line):
        if name in ("RAM", "SWAP", "IRAM", "LFB"):
            continue
        values = [int(current), int(average)]
        if third:
            values.append(int(third))
        if name in UNUSED_RAILS:
            continue
        rails[name] = values
    return {"rails_mw": rails, "extra": extra}


def choose_total(rail_names, override=None):
    # type: (list[str], str | None) -> tuple[str | None, str]
    """(total rail name or None, note) for the rails a board reports."""
    if override:
        if override in rail_names:
            return override, "rail %s, named by power.options.total_rail" % override
        return None, ("power.options.total_rail=%s is not among this board's rails (%s)"
                      % (override, ", ".join(sorted(rail_names))))
    for name in TOTAL_RAILS:
        if name in rail_names:
            return name, "%s is the board's input rail (whole-module power)" % name
    board = "Xavier" if "SYS5V" in rail_names else ("AGX Orin" if "VIN_SYS_5V0" in rail_names else "")
    return None, ("no board-total rail on this board%s: sum of listed rails is a lower bound "
                  "(extra.rails_sum_w)" % ((" (%s)" % board) if board else ""))


class TegrastatsSensor(StreamingSensor):
    kind = "tegrastats"
    what = "tegrastats"
    missing_hint = " (it ships with Jetson Linux / L4T: is this target a Jetson?)"
    NEVER_RUN_ON_HARDWARE = True
    OPTIONS = {
        "command": ("argv", None),          # replaces the whole argv (tests feed recorded lines)
        "total_rail": ("str", None),
        "never_run_on_hardware": ("bool", None),
    }

    def default_argv(self):
        # type: () -> list[str]
        return ["tegrastats", "--interval", str(max(1, int(round(self.interval_s * 1000))))]

    def parse_line(self, t_ns, line):
        # type: (int, str) -> dict | None
        if not line.strip():
            return None
        return self.sample_from_line(t_ns, line)

    def sample_from_line(self, t_ns, line):
        # type: (int, str) -> dict
        parsed = parse_line(line)
        rails_mw = parsed["rails_mw"]
        if not rails_mw:
            raise SensorError("tegrastats line has no power rails (a board without INA3221 monitors, "
                              "e.g. Jetson Nano 2GB, prints none): %s" % line[:200])
        extra = parsed["extra"]
        extra["rails_mw_reported"] = rails_mw
        rails = dict((name, values[0] / 1000.0) for name, values in rails_mw.items())
        self.total_rail, self.total_note = choose_total(list(rails), self.options.get("total_rail"))
        if self.total_rail is not None:
            total = rails[self.total_rail]
        else:
            total = None
            extra["rails_sum_w"] = sum(rails.values())
        return make_sample(t_ns, total, rails, extra)


SENSOR_CLASS = TegrastatsSensor
