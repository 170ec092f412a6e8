"""Runtime adapters, looked up by the name a target file and a Job use.

Each adapter module is imported only when a Job asks for it, inside the interpreter the
target declares for that runtime, so an absent runtime costs nothing elsewhere.
"""

import importlib

from ..protocol import AgentFailure

TYPE_CHECKING = False  # mypy takes this name as True; the adapters' base is imported with the adapter
if TYPE_CHECKING:
    from .base import BaseAdapter  # noqa: F401 (named only in type comments, which ruff does not read)

ADAPTER_MODULES = {
    "noop": "noop",
    "onnxruntime": "onnxruntime",
    "paddle-inference": "paddle_inference",
    "paddle-lite": "paddle_lite",
    "litert": "litert",
}


def load_adapter_class(name):
    # type: (str) -> type[BaseAdapter]
    if name not in ADAPTER_MODULES:
        raise AgentFailure(
            "bad-option",
            "unknown runtime %r (this agent knows: %s)" % (name, ", ".join(sorted(ADAPTER_MODULES))))
    module = importlib.import_module("." + ADAPTER_MODULES[name], __name__)
    return module.Adapter
