"""Sensors fed by a tool that prints one reading per line (tegrastats, nvidia-smi).

LineStream runs the tool and timestamps each line as it arrives; StreamingSensor is the
Sensor built on it, whose subclasses only say how to start the tool and parse a line.
"""

import collections
import os
import queue
import subprocess
import threading

from ..clock import now_ns
from .errors import SensorError, SensorGone, SensorUnavailable
from .sensor import Sensor

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments, not imported on the device
if TYPE_CHECKING:
    from typing import IO  # noqa: F401 (named only in type comments, which ruff does not read)


class LineStream(object):
    """Runs a tool (argv list, never a shell) and timestamps each stdout line on arrival.

    A reader thread puts (t_ns, line) on a queue, so the arrival time is taken when the
    line comes, not when the Sampler gets round to it; (t_ns, None) marks the end of the
    tool's output. stderr is drained (last lines kept for error messages) so the tool
    never blocks on a full pipe.
    """

    def __init__(self, argv, what):
        # type: (list[str], str) -> None
        self.argv = list(argv)
        self.what = what
        self.proc = None  # type: subprocess.Popen[bytes] | None
        self._lines = None  # type: queue.Queue[tuple[int, str | None]] | None
        self._stderr = collections.deque(maxlen=20)  # type: collections.deque[str]

    def start(self):
        # type: () -> None
        self._lines = queue.Queue()
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, close_fds=True)
        except FileNotFoundError as exc:
            raise SensorUnavailable("%s not found: %s" % (self.what, self.argv[0])) from exc
        except PermissionError as exc:
            raise SensorUnavailable("%s cannot be run: permission denied on %s" % (self.what, self.argv[0])) from exc
        except OSError as exc:
            raise SensorUnavailable("%s cannot be started: %s" % (self.what, exc)) from exc
        threading.Thread(target=self._pump_stdout, args=(self.proc.stdout, self._lines),
                         name="sensor-stdout", daemon=True).start()
        threading.Thread(target=self._pump_stderr, args=(self.proc.stderr,),
                         name="sensor-stderr", daemon=True).start()

    def _pump_stdout(self, pipe, lines):
        # type: (IO[bytes], queue.Queue[tuple[int, str | None]]) -> None
        try:
            for raw in iter(pipe.readline, b""):
                lines.put((now_ns(), raw.decode("utf-8", "replace").rstrip("\r\n")))
        except (OSError, ValueError):
            pass
        finally:
            lines.put((now_ns(), None))

    def _pump_stderr(self, pipe):
        # type: (IO[bytes]) -> None
        try:
            for raw in iter(pipe.readline, b""):
                self._stderr.append(raw.decode("utf-8", "replace").rstrip())
        except (OSError, ValueError):
            pass

    def get(self, timeout_s):
        # type: (float) -> tuple[int, str]
        """The next (t_ns, line); SensorError on timeout, SensorGone once the tool has exited."""
        if self._lines is None:
            raise SensorGone("%s is not running" % self.what)
        try:
            t_ns, line = self._lines.get(timeout=timeout_s)
        except queue.Empty as exc:
            raise SensorError("no output from %s for %.1f s" % (self.what, timeout_s)) from exc
        if line is None:
            self._lines.put((t_ns, None))  # every later get() also sees the end
            raise SensorGone(self.exit_message())
        return t_ns, line

    def exit_message(self):
        # type: () -> str
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        tail = " | ".join(line for line in list(self._stderr)[-3:] if line)
        return "%s exited (code %s)%s" % (self.what, code, (": " + tail) if tail else "")

    def stop(self):
        # type: () -> None
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.terminate()
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=2)
            except OSError:
                pass
        for pipe in (proc.stdout, proc.stderr):
            if pipe is None:  # never with PIPE, but Popen's types allow it
                continue
            try:
                pipe.close()
            except (OSError, ValueError):
                pass


class StreamingSensor(Sensor):
    """A sensor fed by a tool that prints one reading per interval (tegrastats, nvidia-smi).

    Subclasses give default_argv() and parse_line(t_ns, line) -> sample or None (a line to
    skip); a line that should parse but does not raises SensorError.
    """

    streaming = True
    what = "tool"
    missing_hint = ""

    def __init__(self, options=None, root="/"):
        # type: (dict | None, str) -> None
        Sensor.__init__(self, options, root)
        self._stream = None  # type: LineStream | None
        self._ready = []  # type: list[dict]  # samples completed by a line but not yet returned

    def argv(self):
        # type: () -> list[str]
        return list(self.options.get("command") or self.default_argv())

    def default_argv(self):
        # type: () -> list[str]
        raise NotImplementedError

    def parse_line(self, t_ns, line):
        # type: (int, str) -> dict | None
        """The sample `line` completes, or None for a line that carries none."""
        raise NotImplementedError

    def _timeout_s(self):
        # type: () -> float
        return max(2.0, 10 * self.interval_s)

    def _probe(self):
        # type: () -> None
        argv = self.argv()
        program = argv[0]
        if os.sep in program:
            if not os.access(program, os.X_OK):
                raise SensorUnavailable("%s not found or not executable: %s" % (self.what, program))
        else:
            import shutil

            if shutil.which(program) is None:
                raise SensorUnavailable("%s not found on PATH%s" % (program, self.missing_hint))
        stream = LineStream(argv, self.what)
        stream.start()
        last_error = None
        deadline = now_ns() + int(max(5.0, 5 * self.interval_s) * 1e9)
        try:
            while now_ns() < deadline:
                try:
                    t_ns, line = stream.get(max(0.05, (deadline - now_ns()) / 1e9))
                    sample = self.parse_line(t_ns, line)
                except SensorGone as exc:
                    raise SensorUnavailable(
                        "%s%s" % (exc, ("; last line: %s" % last_error) if last_error else "")) from exc
                except SensorError as exc:
                    last_error = str(exc)
                    continue
                if sample is not None:
                    self._reset_stream_state()
                    return
        finally:
            stream.stop()
        raise SensorUnavailable("%s printed no usable reading within %.1f s%s"
                                % (self.what, max(5.0, 5 * self.interval_s),
                                   (": " + last_error) if last_error else ""))

    def _reset_stream_state(self):
        # type: () -> None
        """Forget per-stream state gathered while probing (subclasses with state extend it)."""
        self._ready = []

    def open(self, interval_s=None):
        # type: (float | None) -> None
        Sensor.open(self, interval_s)
        self.close()
        self._ready = []
        self._stream = LineStream(self.argv(), self.what)
        self._stream.start()

    def read_next(self, timeout_s=None):
        # type: (float | None) -> dict
        """Block until the tool's next reading; SensorError / SensorGone on failure."""
        if self._ready:
            return self._ready.pop(0)
        stream = self._stream
        if stream is None:
            raise SensorGone("%s is not running (open() the sensor first)" % self.what)
        timeout_s = self._timeout_s() if timeout_s is None else timeout_s
        deadline = now_ns() + int(timeout_s * 1e9)
        while True:
            left = (deadline - now_ns()) / 1e9
            if left <= 0:
                raise SensorError("no reading from %s for %.1f s" % (self.what, timeout_s))
            t_ns, line = stream.get(left)
            sample = self.parse_line(t_ns, line)
            if sample is not None:
                return sample

    def _read(self):
        # type: () -> dict
        if self._stream is None:
            self.open()
        return self.read_next()

    def close(self):
        # type: () -> None
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()

