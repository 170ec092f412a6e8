"""The agent: stdlib-only code that runs ON the device, one fresh process per Job.

It is pushed to the device by content hash and started as ``python -m <package>``; it must
run on Python 3.6 (JetPack 4 ships 3.6), so: no dataclasses, no ``from __future__ import
annotations``, no walrus, no ``subprocess.run(capture_output=...)``, and ``perf_counter_ns``
only where it exists. Imports inside the package are relative so the pushed copy works
under any package name.

Types are given in type comments (checked by mypy, never evaluated, so PEP 604/585 spellings
such as ``dict | None`` are fine). A name needed only by a type comment is imported under
``if TYPE_CHECKING:`` with a module-level ``TYPE_CHECKING = False``: mypy takes that name as
true, and the device never imports `typing` (or numpy) for it.
"""

AGENT_VERSION = "0.1.0"
PROTOCOL_VERSION = 1
