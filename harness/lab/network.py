"""The lab's network: one network namespace per device on a bridge, or loopback ports.

Namespace mode (needs CAP_NET_ADMIN)::

    host: bridge <prefix>0 = 10.200.0.1/24
            ├─ <prefix>v0 ══ veth ══ eth0 in netns <prefix>-jetson-nano  10.200.0.10/24
            ├─ <prefix>v1 ══ veth ══ eth0 in netns <prefix>-edge-cpu     10.200.0.11/24
            ...                         (lo up, default route via 10.200.0.1)

A device's link rate is a ``tbf`` qdisc on both ends of its veth (host→device on the host
side, device→host inside the namespace): ``tc ... tbf rate 20mbit burst 32kbit latency 400ms``
(this kernel has no netem). Faults for fault-injection tests are nftables rules in a table
``hlab_faults`` *inside* the device's namespace: `blackhole` drops everything on eth0,
`set_loss` drops N % of incoming packets (``numgen random mod 100 < N``); each drop rule
counts what it dropped (`dropped`); `clear_faults` deletes the table. Deleting the
namespace deletes its veth, qdiscs and rules.

Loopback mode (fallback when namespaces cannot be created): every sshd listens on
127.0.0.1 on its own port; no link rates; faults are a host table ``<prefix>_faults_<port>``
matching the device's port, removed by `clear_faults` / the lab's `down`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time
from dataclasses import asdict, dataclass

from harness.lab.sshd import LabError

TBF_BURST = "32kbit"
TBF_LATENCY = "400ms"
NS_FAULT_TABLE = "hlab_faults"
DEVICE_IFACE = "eth0"


def _run(argv: list[str], what: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, input=input_text)
    if check and done.returncode != 0:
        raise LabError(f"{what} failed: {' '.join(argv)}: {done.stderr.strip()[-300:]}")
    return done


def _in_ns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


@dataclass(frozen=True)
class LinkPlan:
    """Where a device sits on the network. ``netns``/``veth`` are None in loopback mode."""

    address: str
    port: int
    netns: str | None = None
    veth: str | None = None
    gateway: str | None = None
    prefixlen: int = 24
    rate: str | None = None
    fault_table: str | None = None  # loopback mode: the host table holding this device's faults

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LinkPlan:
        return cls(**data)  # type: ignore[arg-type]


def addresses(subnet: str, index: int) -> tuple[str, str, int]:
    """(gateway, device address, prefix length) for device ``index`` of ``subnet``."""
    network = ipaddress.ip_network(subnet)
    hosts = network.num_addresses
    if 10 + index >= hosts - 1:
        raise LabError(f"subnet {subnet} has no room for device #{index} (address .{10 + index})")
    return str(network.network_address + 1), str(network.network_address + 10 + index), network.prefixlen


def namespace_plan(prefix: str, subnet: str, index: int, name: str, rate: str | None) -> LinkPlan:
    gateway, address, prefixlen = addresses(subnet, index)
    return LinkPlan(address=address, port=22, netns=f"{prefix}-{name}", veth=f"{prefix}v{index}",
                    gateway=gateway, prefixlen=prefixlen, rate=rate)


def loopback_plan(prefix: str, port: int) -> LinkPlan:
    return LinkPlan(address="127.0.0.1", port=port, fault_table=f"{prefix.replace('-', '_')}_faults_{port}")


def namespaces_available(prefix: str) -> tuple[bool, str]:
    """Try to create (and delete) a namespace and a bridge: True, or False with the reason."""
    if os.geteuid() != 0:
        return False, "not root (network namespaces need CAP_NET_ADMIN)"
    probe_ns, probe_link = f"{prefix}-probe", f"{prefix}probe"
    done = _run(["ip", "netns", "add", probe_ns], "probe", check=False)
    if done.returncode != 0:
        return False, f"ip netns add failed: {done.stderr.strip()}"
    _run(["ip", "netns", "del", probe_ns], "probe", check=False)
    done = _run(["ip", "link", "add", probe_link, "type", "bridge"], "probe", check=False)
    if done.returncode != 0:
        return False, f"cannot create a bridge: {done.stderr.strip()}"
    _run(["ip", "link", "del", probe_link], "probe", check=False)
    return True, "network namespaces on a bridge"


def _link_exists(name: str, netns: str | None = None) -> bool:
    return _run(_in_ns(netns, ["ip", "link", "show", "dev", name]), "ip link", check=False).returncode == 0


def netns_list() -> list[str]:
    done = _run(["ip", "-j", "netns", "list"], "ip netns list", check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return []
    return [entry["name"] for entry in json.loads(done.stdout)]


def ensure_bridge(bridge: str, gateway: str, prefixlen: int) -> None:
    if not _link_exists(bridge):
        _run(["ip", "link", "add", bridge, "type", "bridge"], f"creating bridge {bridge}")
    _run(["ip", "addr", "replace", f"{gateway}/{prefixlen}", "dev", bridge], f"addressing bridge {bridge}")
    _run(["ip", "link", "set", bridge, "up"], f"bringing up {bridge}")


def remove_bridge(bridge: str) -> None:
    if _link_exists(bridge):
        _run(["ip", "link", "del", bridge], f"removing bridge {bridge}")


def ensure_link(plan: LinkPlan, bridge: str) -> None:
    """Namespace, veth into the bridge, address, lo, default route, link rate (idempotent)."""
    assert plan.netns and plan.veth and plan.gateway
    if plan.netns not in netns_list():
        _run(["ip", "netns", "add", plan.netns], f"creating namespace {plan.netns}")
    if not _link_exists(plan.veth):
        _run(["ip", "link", "add", plan.veth, "type", "veth", "peer", "name", DEVICE_IFACE, "netns", plan.netns],
             f"creating veth {plan.veth}")
    _run(["ip", "link", "set", plan.veth, "master", bridge, "up"], f"attaching {plan.veth} to {bridge}")
    ns = plan.netns
    _run(_in_ns(ns, ["ip", "addr", "replace", f"{plan.address}/{plan.prefixlen}", "dev", DEVICE_IFACE]),
         f"addressing {ns}")
    _run(_in_ns(ns, ["ip", "link", "set", DEVICE_IFACE, "up"]), f"bringing up {ns}'s {DEVICE_IFACE}")
    _run(_in_ns(ns, ["ip", "link", "set", "lo", "up"]), f"bringing up {ns}'s lo")
    _run(_in_ns(ns, ["ip", "route", "replace", "default", "via", plan.gateway]), f"default route in {ns}")
    set_rate(plan, plan.rate)


def remove_link(plan: LinkPlan) -> None:
    """Delete the namespace (its veth end, qdiscs and nft tables go with it) and the host veth."""
    if plan.netns and plan.netns in netns_list():
        _run(["ip", "netns", "del", plan.netns], f"removing namespace {plan.netns}")
    if plan.veth:
        # the namespace's end going away takes the host end with it, asynchronously
        deadline = time.monotonic() + 3.0
        while _link_exists(plan.veth) and time.monotonic() < deadline:
            _run(["ip", "link", "del", plan.veth], "removing veth", check=False)
            time.sleep(0.05)
        if _link_exists(plan.veth):
            raise LabError(f"veth {plan.veth} cannot be removed")
    if plan.fault_table:
        clear_faults(plan)


def set_rate(plan: LinkPlan, rate: str | None) -> None:
    """Limit the device's link to ``rate`` (tc syntax, e.g. ``20mbit``) both ways, or lift it."""
    if plan.netns is None:
        if rate:
            raise LabError("link rates need namespace mode (loopback mode shares one interface)")
        return
    assert plan.veth is not None  # set with netns (namespace mode)
    ends: list[tuple[str | None, str]] = [(None, plan.veth), (plan.netns, DEVICE_IFACE)]
    for netns, dev in ends:
        if rate:
            _run(_in_ns(netns, ["tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate,
                                "burst", TBF_BURST, "latency", TBF_LATENCY]), f"tbf on {dev}")
        else:
            _run(_in_ns(netns, ["tc", "qdisc", "del", "dev", dev, "root"]), f"tc on {dev}", check=False)


def qdiscs(plan: LinkPlan) -> str:
    """``tc qdisc show`` of both ends of the device's link."""
    if plan.netns is None:
        return ""
    assert plan.veth is not None  # set with netns (namespace mode)
    host = _run(["tc", "qdisc", "show", "dev", plan.veth], "tc", check=False).stdout
    device = _run(_in_ns(plan.netns, ["tc", "qdisc", "show", "dev", DEVICE_IFACE]), "tc", check=False).stdout
    return host + device


# ------------------------------------------------------------------ faults (nftables)


def _nft(plan: LinkPlan, script: str) -> None:
    _run(_in_ns(plan.netns, ["nft", "-f", "-"]), "nft", input_text=script)


def _fault_rules(plan: LinkPlan) -> tuple[str, str, str]:
    """(table, inbound match, outbound match) for this device's traffic."""
    if plan.netns:
        return NS_FAULT_TABLE, f'iifname "{DEVICE_IFACE}"', f'oifname "{DEVICE_IFACE}"'
    assert plan.fault_table
    return plan.fault_table, f"tcp dport {plan.port}", f"tcp sport {plan.port}"


def _install_faults(plan: LinkPlan, inbound_rule: str, outbound_rule: str | None) -> None:
    clear_faults(plan)
    table, inbound, outbound = _fault_rules(plan)
    lines = [
        f"table inet {table} {{",
        "  chain input { type filter hook input priority -10; policy accept;",
        f"    {inbound} {inbound_rule}",
        "  }",
        "  chain output { type filter hook output priority -10; policy accept;",
        f"    {outbound} {outbound_rule}" if outbound_rule else "",
        "  }",
        "}",
    ]
    _nft(plan, "\n".join(lines) + "\n")


def blackhole(plan: LinkPlan) -> None:
    """Drop every packet to and from the device (it looks powered off / unplugged)."""
    _install_faults(plan, "counter drop", "counter drop")


def set_loss(plan: LinkPlan, percent: int) -> None:
    """Drop ``percent`` % of the packets arriving at the device (at random)."""
    if not 0 <= percent <= 100:
        raise LabError(f"packet loss must be 0..100 %, not {percent}")
    if percent == 0:
        clear_faults(plan)
    elif percent == 100:
        _install_faults(plan, "counter drop", None)
    else:
        _install_faults(plan, f"numgen random mod 100 < {percent} counter drop", None)


def clear_faults(plan: LinkPlan) -> None:
    table, _, _ = _fault_rules(plan)
    if plan.netns and plan.netns not in netns_list():
        return
    _run(_in_ns(plan.netns, ["nft", "delete", "table", "inet", table]), "nft", check=False)


def faults(plan: LinkPlan) -> str:
    """The device's fault rules as nft lists them ('' when none)."""
    table, _, _ = _fault_rules(plan)
    return _run(_in_ns(plan.netns, ["nft", "list", "table", "inet", table]), "nft", check=False).stdout


def dropped(plan: LinkPlan) -> int:
    """How many packets the device's fault rules have dropped so far (0 when none are set)."""
    return sum(int(count) for count in re.findall(r"counter packets (\d+) bytes \d+ drop", faults(plan)))


# ------------------------------------------------------------------ leftovers


def leftovers(prefix: str) -> list[str]:
    """Namespaces, links and host nft tables named after ``prefix`` that exist now."""
    found = [f"netns {name}" for name in netns_list() if name.startswith(f"{prefix}-")]
    links = _run(["ip", "-j", "link", "show"], "ip link", check=False).stdout
    for link in json.loads(links or "[]"):
        name = link.get("ifname", "")
        if name == f"{prefix}0" or (name.startswith(f"{prefix}v") and name[len(prefix) + 1:].isdigit()):
            found.append(f"link {name}")
    tables = _run(["nft", "list", "tables"], "nft", check=False).stdout
    table_prefix = f"{prefix.replace('-', '_')}_faults_"
    found += [f"nft {line.strip()}" for line in tables.splitlines() if table_prefix in line]
    return found


__all__ = [
    "LinkPlan",
    "addresses",
    "blackhole",
    "clear_faults",
    "dropped",
    "ensure_bridge",
    "ensure_link",
    "faults",
    "leftovers",
    "loopback_plan",
    "namespace_plan",
    "namespaces_available",
    "netns_list",
    "qdiscs",
    "remove_bridge",
    "remove_link",
    "set_loss",
    "set_rate",
]
