"""Paddle Lite (`paddlelite.lite`): optimized `.nb` models through MobileConfig.

Runs in the interpreter the target declares for paddle-lite (on x86 hosts: a Python 3.10
venv, since paddlelite 2.13 has no cp311 wheels). Pitfall handled: under numpy 2,
`Tensor.from_numpy` silently writes garbage, so numpy>=2 is refused outright.
"""

from ..inputs import structured_input
from ..protocol import AgentFailure
from .base import BaseAdapter, distribution_version, import_runtime_modules, predictor_runner, require_file

POWER_MODES = ("LITE_POWER_HIGH", "LITE_POWER_LOW", "LITE_POWER_FULL", "LITE_POWER_NO_BIND",
               "LITE_POWER_RAND_HIGH", "LITE_POWER_RAND_LOW")


class Adapter(BaseAdapter):
    name = "paddle-lite"
    OPTIONS = {
        "threads": (int, None),
        "power_mode": (str, None, POWER_MODES),
        # only to demonstrate that the fidelity suite catches the garbage numpy 2 produces
        "allow_numpy2": (bool, False),
    }

    def import_runtime(self):
        numpy, lite = import_runtime_modules("paddlelite", ("numpy", "paddlelite.lite"))
        if int(numpy.__version__.split(".")[0]) >= 2 and not self.options["allow_numpy2"]:
            raise AgentFailure(
                "runtime-missing",
                "paddle-lite with numpy %s: Tensor.from_numpy writes garbage under numpy 2; install "
                "numpy<2 in this interpreter" % numpy.__version__)
        self._lite = lite

    def version(self):
        return distribution_version("paddlelite", self._lite)

    def load(self, files, input_spec):
        model = require_file(files, "model")
        config = self._lite.MobileConfig()
        config.set_model_from_file(model)
        self.applied = {}
        for option, setter in (("threads", "set_threads"), ("power_mode", "set_power_mode")):
            value = self.options[option]
            if value is None:
                continue
            if not hasattr(config, setter):
                raise AgentFailure("bad-option", "paddle-lite: this build has no %s (option %s); remove "
                                   "it for this target" % (setter, option))
            getattr(config, setter)(getattr(self._lite.PowerMode, value) if option == "power_mode" else value)
            self.applied[option] = value
        try:
            self.predictor = self._lite.create_paddle_predictor(config)
        except Exception as exc:
            raise AgentFailure("model-load", "paddle-lite could not load %s: %s" % (model, exc)) from exc
        self.input_spec = input_spec

    def set_inputs(self, seed):
        spec = self.input_spec
        self.place(structured_input(spec["shape"], spec.get("dtype", "float32"), seed))

    def place(self, array):
        self.predictor.get_input(0).from_numpy(array)

    def runner(self):
        return predictor_runner(self.predictor)

    def outputs(self):
        return [self.predictor.get_output(0).numpy()]

    def describe(self):
        output = self.predictor.get_output(0)
        return {
            "precision": "as-converted",
            "options_applied": self.applied,
            "inputs": [{"name": self.input_spec.get("name", "input0"), "shape": list(self.input_spec["shape"]),
                        "dtype": self.input_spec.get("dtype", "float32")}],
            "outputs": [{"name": "output0", "shape": list(output.shape())}],
        }
