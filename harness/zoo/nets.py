"""The demo networks of the model zoo, built locally, seeded; `harness zoo build` then trains
them on the digits (train.py, digits.py): 10 classes, tiny_cnn at 64x64, mobilenet_v3_small at
96x96 (the 8x8 digits resized; 224x224 would cost ~5x the training time for no accuracy), and
the distillation student (PooledTinyCNN, at 96x96).

Nothing is downloaded. Initial weights come from a numpy RandomState so the same seed gives
the same starting bytes on any machine, independent of paddle's own RNG. What follows is why
the initialisation is not paddle's default (it mattered when the demo nets were untrained; it
is still a sound start for training).

Why not paddle's default initialisation: on mobilenet_v3_small it makes activations vanish
(logits ~1e-2, three of four structured inputs get the same top-1), and Kaiming weights with
*random* BatchNorm statistics are no better: the logits are dominated by a constant part
(measured: 0.7 % relative change between structured inputs, one top-1 for all). Agreement
metrics (fp32 vs int8) would then mean nothing. So:

- conv / linear weights are re-initialised Kaiming-normal (std = sqrt(2 / fan_in));
- BatchNorm gets random affine parameters (gamma ~ U(0.5, 1.5), beta ~ N(0, 0.25)) and running
  mean/var *recalibrated on data*: one forward pass in BN-training mode over a batch of
  structured inputs (seeds 20_000 + seed + i, distinct from PTQ calibration at 10_000+ and
  from measurement seeds), with momentum 0 so the running statistics are exactly that batch's.
  Each channel is then centred on the data, so outputs move with the input. Measured
  (input seed 0 vs 1..5): mobilenet_v3_small 45-300 % relative change, 4 distinct top-1 of 6;
  tiny_cnn 22-58 %.

Graph shape rule: flatten is written `reshape(x, [0, -1])`, never `paddle.flatten`: Paddle
Lite's x86 opt segfaults on flatten. paddle.vision's MobileNetV3Small calls `paddle.flatten`
in its forward, so `mobilenet_v3_small` here is a subclass whose forward is the same
computation with the reshape instead (the parameters and layer names are unchanged).

Python 3.11, host side (needs paddle and numpy).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import paddle
import paddle.nn as nn

from harness.agent.inputs import structured_input

#: Seed offset of the BatchNorm recalibration inputs (calibration for PTQ uses 10_000+,
#: measurement uses small seeds).
BN_SEED_OFFSET = 20_000
BN_BATCH = 8


class ConvBNReLU(nn.Layer):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2D(cin, cout, kernel, stride=stride, padding=kernel // 2,
                              groups=groups, bias_attr=False)
        self.bn = nn.BatchNorm2D(cout)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class TinyCNN(nn.Layer):
    """Input [1, 3, 64, 64] -> logits [1, 10].

    conv3x3/2 (3->16), depthwise conv3x3 (16), pointwise 1x1 (16->32), conv3x3/2 (32->64),
    conv3x3 (64->64), global average pool, reshape to [N, -1], linear 64->10.
    """

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            ConvBNReLU(3, 16, 3, stride=2),
            ConvBNReLU(16, 16, 3, stride=1, groups=16),  # depthwise
            ConvBNReLU(16, 32, 1),
            ConvBNReLU(32, 64, 3, stride=2),
            ConvBNReLU(64, 64, 3),
        )
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.pool(self.features(x))
        x = paddle.reshape(x, [0, -1])
        return self.fc(x)


class MobileNetV3SmallNoFlatten(paddle.vision.models.MobileNetV3Small):
    """paddle.vision's MobileNetV3Small with `paddle.flatten(x, 1)` replaced by a reshape."""

    def forward(self, x):
        x = self.conv(x)
        x = self.blocks(x)
        x = self.lastconv(x)
        if self.with_pool:
            x = self.avgpool(x)
        if self.num_classes > 0:
            x = paddle.reshape(x, [0, -1])
            x = self.classifier(x)
        return x


def _tiny_cnn() -> nn.Layer:
    return TinyCNN()


class PooledTinyCNN(nn.Layer):
    """The distillation student: a 2x2 average pool, then a TinyCNN (so 96x96 inputs reach it as
    48x48; without the pool it learns the 12x-upscaled digits far worse: 72 % vs 96 % top-1)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.pool = nn.AvgPool2D(2)
        self.net = TinyCNN(num_classes)

    def forward(self, x):
        return self.net(self.pool(x))


def _pooled_tiny_cnn() -> nn.Layer:
    return PooledTinyCNN()


def _mobilenet_v3_small() -> nn.Layer:
    # Same constructor as paddle.vision.models.mobilenet_v3_small(pretrained=False, num_classes=10).
    return MobileNetV3SmallNoFlatten(scale=1.0, num_classes=NUM_CLASSES)


NUM_CLASSES = 10
#: name -> (constructor, input shape NCHW)
NETS: dict[str, tuple[Callable[[], nn.Layer], tuple[int, ...]]] = {
    "tiny_cnn": (_tiny_cnn, (1, 3, 64, 64)),
    "mobilenet_v3_small": (_mobilenet_v3_small, (1, 3, 96, 96)),
}
#: The distillation student of each model that has one: (constructor, what it is).
STUDENTS: dict[str, tuple[Callable[[], nn.Layer], str]] = {
    "mobilenet_v3_small": (_pooled_tiny_cnn, "2x2 average pool + TinyCNN (3x3/2 16, dw 16, 1x1 32, 3x3/2 64, "
                                             "3x3 64, fc 10)"),
}


def build_student(name: str, seed: int = 0) -> nn.Layer:
    """The distillation student of model `name`, with seeded initial weights."""
    constructor, _ = STUDENTS[name]
    paddle.seed(seed)
    net = constructor()
    _init_weights(net, seed)
    _recalibrate_batchnorm(net, NETS[name][1], seed)
    net.eval()
    return net


def input_shape(name: str) -> tuple[int, ...]:
    return NETS[name][1]


def build_net(name: str, seed: int = 0) -> nn.Layer:
    """Return the named net in eval mode with seeded, non-degenerate weights."""
    if name not in NETS:
        raise KeyError(f"unknown demo net {name!r} (known: {', '.join(NETS)})")
    constructor, shape = NETS[name]
    paddle.seed(seed)
    net = constructor()
    _init_weights(net, seed)
    _recalibrate_batchnorm(net, shape, seed)
    net.eval()
    return net


def _init_weights(net: nn.Layer, seed: int) -> None:
    rng = np.random.RandomState(seed)
    for _, layer in net.named_sublayers(include_self=True):
        if isinstance(layer, nn.Conv2D):
            shape = list(layer.weight.shape)  # [out, in/groups, kh, kw]
            fan_in = int(np.prod(shape[1:]))
            layer.weight.set_value(rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype("float32"))
            if layer.bias is not None:
                layer.bias.set_value(np.zeros(layer.bias.shape, dtype="float32"))
        elif isinstance(layer, nn.Linear):
            shape = list(layer.weight.shape)  # [in, out]
            layer.weight.set_value(rng.normal(0.0, np.sqrt(2.0 / shape[0]), shape).astype("float32"))
            if layer.bias is not None:
                layer.bias.set_value(rng.normal(0.0, 0.01, layer.bias.shape).astype("float32"))
        elif isinstance(layer, nn.BatchNorm2D) and layer.weight is not None and layer.bias is not None:
            channels = layer.weight.shape[0]  # (a BN without scale and shift has nothing to initialise)
            layer.weight.set_value(rng.uniform(0.5, 1.5, channels).astype("float32"))
            layer.bias.set_value(rng.normal(0.0, 0.25, channels).astype("float32"))


def _recalibrate_batchnorm(net: nn.Layer, shape: tuple[int, ...], seed: int) -> None:
    """Set every BN's running mean/var to the statistics of a batch of structured inputs."""
    bns = [layer for layer in net.sublayers() if isinstance(layer, nn.BatchNorm2D)]
    if not bns:
        return
    single = [1] + list(shape[1:])
    batch = np.concatenate(
        [structured_input(single, "float32", BN_SEED_OFFSET + seed + i) for i in range(BN_BATCH)]
    )
    net.eval()  # dropout and friends stay in inference mode
    saved = [layer._momentum for layer in bns]
    for layer in bns:
        layer._momentum = 0.0  # running = running * momentum + batch * (1 - momentum)
        layer.train()
    with paddle.no_grad():
        net(paddle.to_tensor(batch))
    for layer, momentum in zip(bns, saved, strict=True):
        layer._momentum = momentum
        layer.eval()
