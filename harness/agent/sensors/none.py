"""`power: none` (or no power key): there is no sensor, and results say so."""

from .errors import SensorUnavailable
from .sensor import Sensor

REASON = "no power sensor declared for this target"


class NoSensor(Sensor):
    kind = "none"

    def _probe(self):
        # type: () -> None
        raise SensorUnavailable(REASON)

    def _read(self):
        # type: () -> dict
        raise SensorUnavailable(REASON)

    def describe(self):
        # type: () -> dict
        described = Sensor.describe(self)
        described["total_note"] = REASON
        return described


SENSOR_CLASS = NoSensor
