"""A target made reachable for one session: its transport, push cache and agent client."""

from __future__ import annotations

from pathlib import Path

from .client import AgentClient
from .errors import HarnessError
from .transport import ContentCache, Transport, open_transport


class Device:
    """Opened once per target per session and reused by every test on that target."""

    def __init__(self, target, transport: Transport | None = None) -> None:  # target: inventory.Target
        self.target = target
        self.transport = transport or open_transport(target)
        self.cache = ContentCache(self.transport)
        self.agent = AgentClient(self.transport, self.cache)

    def interpreter_for(self, runtime: str) -> str:
        """The Python that runs `runtime` on this device (the target file says which)."""
        if runtime == "noop":
            return self.target.python
        declared = self.target.runtimes.get(runtime)
        if declared is None:
            known = ", ".join(sorted(self.target.runtimes)) or "none"
            raise HarnessError(f"{self.target.name}: runtime '{runtime}' is not declared in "
                               f"{self.target.source} (declared: {known})")
        return declared.python

    def push_model_files(self, files: dict[str, str]) -> dict[str, str]:
        """Push each model file by content hash; role -> path on the device."""
        return {role: self.cache.push_file(Path(path)) for role, path in files.items()}

    def close(self) -> None:
        self.transport.close()
