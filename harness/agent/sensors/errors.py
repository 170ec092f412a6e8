"""What can go wrong with a power sensor, from a bad option to a tool that exited.

SensorOptionError and SensorUnavailable stop a measurement before it starts (the first is
the target file's fault, the second the machine's); SensorError and SensorGone happen while
sampling, and the Sampler records them instead of raising.
"""


class SensorUnavailable(Exception):
    """The sensor cannot work on this machine; `reason` says why and what to do."""

    def __init__(self, reason):
        # type: (str) -> None
        Exception.__init__(self, reason)
        self.reason = reason


class SensorOptionError(ValueError):
    """A target file's power.options is wrong (unknown key, wrong type)."""


class SensorError(Exception):
    """One read failed; sampling goes on (the Sampler records it)."""


class SensorGone(SensorError):
    """The sensor stopped for good (its tool exited): sampling ends, recorded as an error."""

