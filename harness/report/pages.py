"""What the report pages (run report, trend, sign-off) share: the jinja environment with its
formatting filters, JSON-safe values, and writing a page's files in one go.

Every page renders a template from harness/report/templates with `environment()` and
writes its files with `write_page`, which turns an OSError into one HarnessError line.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from harness.analysis.budgets import format_bytes, format_latency_ms
from harness.errors import HarnessError

MISSING = "–"


def _missing(value: Any) -> bool:
    """None, or pandas' missing value (NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_ms(value: float | None) -> str:
    """A latency in ms with three decimals (the `ms` filter)."""
    return MISSING if _missing(value) else f"{value:.3f}"


def format_number(value: float | None, fmt: str = "{:.1f}") -> str:
    """A number through `fmt` (the `num` filter)."""
    return MISSING if _missing(value) else fmt.format(value)


def format_value(value: Any, unit: str) -> str:
    """A metric value with its unit, for the comparison tables (the `value` filter)."""
    if _missing(value):
        return MISSING
    if unit == "ms":
        return format_latency_ms(value)
    if unit == "bytes":
        return format_bytes(value)
    if unit == "W":
        return f"{value:.2f} W"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    return f"{value:g} {unit}".strip()


def format_change(ratio: float | None) -> str:
    """A ratio new/old as a signed percent change: 1.05 -> +5.0% (the `pct` filter)."""
    return MISSING if ratio is None else f"{(ratio - 1) * 100:+.1f}%"


def format_pvalue(p: float | None) -> str:
    """A p-value, in scientific notation below 0.001 (the `pvalue` filter)."""
    if p is None:
        return MISSING
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.0e}"


class ReportEnvironment(Environment):
    """Jinja's environment, with `x.key` on a dict looking the key up first.

    Jinja tries `getattr(x, "key")` first and the item only after the AttributeError: a
    third of a 10,000-measurement page's rendering time went into those exceptions. The
    pages' values are plain dicts, so for them a present key wins, and a method (`.get`,
    `.items`) is found when no key of that name is there (a data dict with a key "items"
    would shadow the method: write `x["items"]` / `x.items()` with care)."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


@functools.cache
def environment() -> Environment:
    """The jinja environment of the report templates, HTML-escaping, with the filters above;
    one per process, so each template is compiled once."""
    env = ReportEnvironment(loader=PackageLoader("harness.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["ms"] = format_ms
    env.filters["num"] = format_number
    env.filters["value"] = format_value
    env.filters["pct"] = format_change
    env.filters["pvalue"] = format_pvalue
    return env


def inline_script(name: str) -> dict[str, str]:
    """A script of harness/report/templates, to inline: {"text", "csp"}; `csp` is the page's
    Content-Security-Policy, which lets exactly this script run (by its sha256) and nothing
    else: no other script, no request off the page (figures are inline SVG or data: PNGs)."""
    text = resources.files("harness.report").joinpath("templates", name).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return {"text": text, "csp": f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                                 f"script-src 'sha256-{digest}'"}


def json_safe(value: Any) -> Any:
    """`value` with NaN/inf (pandas' missing values) replaced by None, through dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_page(out: Path, what: str, files: Mapping[str, str]) -> None:
    """Create `out` and write each of `files` ({name: text}) into it, UTF-8.

    Raises HarnessError "cannot write the <what> to <out>: <reason>"."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HarnessError(f"cannot write the {what} to {out}: {exc.strerror}") from None
