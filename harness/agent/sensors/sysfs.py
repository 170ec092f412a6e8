"""Reading one sysfs / procfs attribute, as the sensors that read the kernel directly do."""

from .errors import SensorError


def read_text(path):
    # type: (str) -> str
    """A sysfs attribute's text, stripped. OSError (incl. PermissionError) propagates."""
    with open(path, "r") as handle:
        return handle.read().strip()


def read_number(path):
    # type: (str) -> float
    """A sysfs number; SensorError naming the file when it is not one."""
    text = read_text(path)
    try:
        return float(text.split()[0])
    except (ValueError, IndexError) as exc:
        raise SensorError("%s does not hold a number: %r" % (path, text[:60])) from exc
