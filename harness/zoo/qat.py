"""Quantization-aware training of a trained demo net: a short fine-tune with fake-quant layers.

paddle.quantization.QAT wraps every conv/linear in fake quantize-dequantize (abs-max observers
on weights and activations, moving rate 0.9) and every other layer in an observer; the net is
then fine-tuned on the train split (train.py), so its weights learn to live on the int8 grid.

How the int8 file is made from it (demo_variants.quantize_qat), and why not QAT.convert: in
paddle 3.3.1 `QAT.convert` fails on these quanters (LinearQuanter gets zero_point None), and
the fake-quant net exported as is runs with oneDNN int8 kernels to wrong outputs (measured:
196/360 correct where its fake-quant simulation gets 317). So the fine-tuned weights are copied
back into a plain net (`plain_copy`), exported, and quantized with paddle static PTQ like the
int8 variant: same int8 format and kernels, weights that were trained for them.

Python 3.11, build worker side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import paddle.nn as nn

from harness.zoo import nets, train

MOVING_RATE = 0.9
SCHEDULE = train.Schedule(epochs=1, learning_rate=5e-4)


def fine_tune(model: str, trained: nn.Layer, x: np.ndarray, y: np.ndarray, seed: int,
              say: Callable[[str], None]) -> tuple[nn.Layer, dict[str, Any]]:
    """A plain net of `model` holding `trained`'s weights after QAT fine-tuning; the record."""
    from paddle.quantization import QAT, QuantConfig
    from paddle.quantization.quanters import FakeQuanterWithAbsMaxObserver

    start = nets.build_net(model, seed)
    start.set_state_dict(trained.state_dict())
    start.train()
    config = QuantConfig(activation=FakeQuanterWithAbsMaxObserver(moving_rate=MOVING_RATE),
                         weight=FakeQuanterWithAbsMaxObserver(moving_rate=MOVING_RATE))
    quantized = QAT(config).quantize(start, inplace=False)
    record = train.train(quantized, x, y, SCHEDULE, seed + 2, say, "qat")
    plain = plain_copy(model, quantized, seed)
    return plain, {**record, "tool": "paddle.quantization.QAT", "quanter": "FakeQuanterWithAbsMaxObserver",
                   "moving_rate": MOVING_RATE}


def plain_copy(model: str, quantized: nn.Layer, seed: int) -> nn.Layer:
    """A fresh net of `model` with the QAT net's weights (quanter state dropped, observer-wrapped
    layers' `X._observed.Y` keys read as `X.Y`)."""
    net = nets.build_net(model, seed)
    own = net.state_dict()
    weights = {key.replace("._observed.", "."): value for key, value in quantized.state_dict().items()}
    missing = [key for key in own if key not in weights]
    if missing:
        raise KeyError(f"QAT net lacks {len(missing)} weights of the plain net, e.g. {missing[0]}")
    net.set_state_dict({key: weights[key] for key in own})
    net.eval()
    return net
