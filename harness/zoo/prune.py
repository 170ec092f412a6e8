"""Structured (filter) pruning of the demo nets by L1 norm, in dygraph, before export.

No paddleslim (its dependencies break under numpy 2, see notes/paddle-stack.md). A *prune
group* is a conv whose output channels are removed, plus every layer that must follow:

    producer conv (out channels) -> its BatchNorm -> [depthwise conv + BN passing the same
    channels through] -> [layers whose *output* channels are the same set, e.g. an SE block's
    fc2] -> consumers (their *input* channels: a conv, or a Linear's rows)

Filters are ranked by the L1 norm of the producer's weights (sum |W[o, :, :, :]|, Li et al.,
"Pruning Filters for Efficient ConvNets", 2017); the `ratio` with the smallest norm go. Kept
channels keep their exact weights and BatchNorm statistics. There is no fine-tuning; the one
correction made is *mean compensation*: the average contribution the removed channels made
to each consumer's output (measured on a batch of structured inputs, seeds 20_000 + seed + i,
the BatchNorm-recalibration inputs of nets.py) is folded into the consumer's bias, or into the
running mean of the BatchNorm after it. Measured at ratio 0.3 (relative output change vs the
unpruned net on inputs seeds 0-3; fp32 itself moves 0.34 / 0.52 between two inputs):
tiny_cnn 1.03 without compensation, 0.55 with; mobilenet_v3_small 1.00 and 0.99 (but top-1
then agrees on 3 of 4 inputs instead of 0). Pruning a random-weight net without fine-tuning
changes its outputs a lot: the fidelity suite shows exactly that, as it should.

Which convs are pruned (all at the same ratio):
- tiny_cnn: the stem conv (through the depthwise conv), the pointwise conv, the two 3x3
  convs (the last one's consumer is the classifier's Linear).
- mobilenet_v3_small: the expansion channels of every inverted-residual block that has an
  expand conv (expand conv -> depthwise -> SE fc1 in / fc2 out -> projection conv in), and
  the last conv (-> classifier Linear rows). Block outputs are left alone: they feed the
  residual additions, which would need the same channel set on both sides.

Python 3.11, host side (needs paddle and numpy).
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar, cast

import numpy as np
import paddle
import paddle.nn as nn

CRITERION = "l1-norm"
DEFAULT_RATIO = 0.3


def _group(conv: str, bn: str, consumers: list[tuple[str, str | None]],
           through: list[tuple[str, str]] | None = None, out_also: list[str] | None = None) -> dict[str, Any]:
    """`consumers`: (layer path, path of the BatchNorm right after it or None)."""
    return {"conv": conv, "bn": bn, "through": list(through or []), "out_also": list(out_also or []),
            "consumers": list(consumers)}


def prune_groups(name: str, net: nn.Layer) -> list[dict[str, Any]]:
    """The prune groups of demo net `name` (layer paths as in `net.named_sublayers()`)."""
    if name == "tiny_cnn":
        return [
            _group("features.0.conv", "features.0.bn", [("features.2.conv", "features.2.bn")],
                   through=[("features.1.conv", "features.1.bn")]),
            _group("features.2.conv", "features.2.bn", [("features.3.conv", "features.3.bn")]),
            _group("features.3.conv", "features.3.bn", [("features.4.conv", "features.4.bn")]),
            _group("features.4.conv", "features.4.bn", [("fc", None)]),
        ]
    if name == "mobilenet_v3_small":
        groups = []
        for index, block in enumerate(net.blocks):
            if not block.expand:
                continue
            prefix = f"blocks.{index}"
            consumers: list[tuple[str, str | None]] = [(f"{prefix}.linear_conv.0", f"{prefix}.linear_conv.1")]
            out_also = []
            if block.use_se:
                consumers.insert(0, (f"{prefix}.mid_se.fc1", None))
                out_also.append(f"{prefix}.mid_se.fc2")
            groups.append(_group(f"{prefix}.expand_conv.0", f"{prefix}.expand_conv.1", consumers,
                                 through=[(f"{prefix}.bottleneck_conv.0", f"{prefix}.bottleneck_conv.1")],
                                 out_also=out_also))
        groups.append(_group("lastconv.0", "lastconv.1", [("classifier.0", None)]))
        return groups
    raise KeyError(f"no prune plan for net {name!r}")


def prune_net(name: str, net: nn.Layer, ratio: float = DEFAULT_RATIO,
              calibration: np.ndarray | None = None) -> dict[str, Any]:
    """Prune `net` in place (eval mode, dygraph); return what was done, for build-info.

    `calibration` (a batch of inputs) enables mean compensation; None skips it."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"prune ratio must be between 0 and 1 (got {ratio})")
    net.eval()
    params_before = _count_params(net)
    report = []
    for group in prune_groups(name, net):
        consumer_means = _consumer_input_means(net, [p for p, _ in group["consumers"]], calibration)
        conv = _get_as(net, group["conv"], nn.Conv2D)
        weight = conv.weight.numpy()
        channels = weight.shape[0]
        keep_count = max(1, int(round(channels * (1.0 - ratio))))
        norms = np.abs(weight).reshape(channels, -1).sum(axis=1)
        # the largest-norm filters, in their original order (stable: ties keep the lower index)
        keep = np.sort(np.argsort(-norms, kind="stable")[:keep_count])
        _set(net, group["conv"], _conv_subset(conv, out_keep=keep))
        _set(net, group["bn"], _bn_subset(_get_as(net, group["bn"], nn.BatchNorm2D), keep))
        for dw_path, dw_bn_path in group["through"]:
            _set(net, dw_path, _conv_subset(_get_as(net, dw_path, nn.Conv2D), out_keep=keep, depthwise=True))
            _set(net, dw_bn_path, _bn_subset(_get_as(net, dw_bn_path, nn.BatchNorm2D), keep))
        for path in group["out_also"]:
            _set(net, path, _conv_subset(_get_as(net, path, nn.Conv2D), out_keep=keep))
        drop = np.setdiff1d(np.arange(channels), keep)
        compensated = []
        for path, bn_path in group["consumers"]:
            layer = _get(net, path)
            new: nn.Linear | nn.Conv2D
            if isinstance(layer, nn.Linear):
                new = _linear_subset(layer, in_keep=keep)
                lost = None if path not in consumer_means else consumer_means[path][drop] @ layer.weight.numpy()[drop]
            elif isinstance(layer, nn.Conv2D):
                new = _conv_subset(layer, in_keep=keep)
                lost = None if path not in consumer_means else (
                    layer.weight.numpy()[:, drop].sum(axis=(2, 3)) * consumer_means[path][drop]).sum(axis=1)
            else:
                raise TypeError(f"consumer {path!r} is a {type(layer).__name__}, not a Linear or Conv2D")
            _set(net, path, new)
            if lost is None or not drop.size:
                continue
            if new.bias is not None:  # y = W x + b: the removed inputs' mean part moves into b
                new.bias.set_value((new.bias.numpy() + lost).astype("float32"))
                compensated.append(path)
            elif bn_path is not None:  # BN((W x) - mean): lower the running mean instead
                bn = _get_as(net, bn_path, nn.BatchNorm2D)
                bn._mean.set_value((bn._mean.numpy() - lost).astype("float32"))
                compensated.append(path)
        report.append({"conv": group["conv"], "channels": int(channels), "kept": int(keep_count),
                       "consumers": [p for p, _ in group["consumers"]], "mean_compensated": compensated,
                       "removed_l1_max": float(np.max(np.delete(norms, keep))) if keep_count < channels else None,
                       "kept_l1_min": float(np.min(norms[keep]))})
    net.eval()
    params_after = _count_params(net)
    return {
        "criterion": CRITERION,
        "ratio": ratio,
        "compensation": "mean" if calibration is not None else "none",
        "compensation_inputs": 0 if calibration is None else int(calibration.shape[0]),
        "groups": report,
        "channels_before": sum(g["channels"] for g in report),
        "channels_kept": sum(g["kept"] for g in report),
        "params_before": params_before,
        "params_after": params_after,
        "kept_ratio_params": round(params_after / params_before, 4),
    }


# --------------------------------------------------------------------------- internals


def _consumer_input_means(net: nn.Layer, paths: list[str], batch: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-channel mean of each consumer's input over `batch` (NCHW: over N, H, W)."""
    if batch is None:
        return {}
    means: dict[str, np.ndarray] = {}
    hooks = []
    for path in paths:
        def hook(layer, inputs, path=path):
            x = inputs[0].numpy().astype("float64")
            means[path] = x.mean(axis=(0, 2, 3)) if x.ndim == 4 else x.mean(axis=0)
        hooks.append(_get(net, path).register_forward_pre_hook(hook))
    try:
        with paddle.no_grad():
            net(paddle.to_tensor(batch))
    finally:
        for handle in hooks:
            handle.remove()
    return means


def _count_params(net: nn.Layer) -> int:
    return int(sum(int(np.prod(p.shape)) for p in net.parameters()))


def _get(net: nn.Layer, path: str) -> nn.Layer:
    layer = net
    for part in path.split("."):
        layer = layer._sub_layers[part]
    return layer


_LayerT = TypeVar("_LayerT", bound=nn.Layer)


def _get_as(net: nn.Layer, path: str, kind: type[_LayerT]) -> _LayerT:
    """The sublayer at `path`, which the pruning groups say is a `kind`."""
    layer = _get(net, path)
    if not isinstance(layer, kind):
        raise TypeError(f"sublayer {path!r} is a {type(layer).__name__}, not a {kind.__name__}")
    return layer


def _set(net: nn.Layer, path: str, new: nn.Layer) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = _get(net, parent_path) if parent_path else net
    if name not in parent._sub_layers:
        raise KeyError(f"no sublayer {path!r}")
    parent._sub_layers[name] = new  # keeps the order nn.Sequential iterates in


def _conv_subset(conv: nn.Conv2D, out_keep: np.ndarray | None = None, in_keep: np.ndarray | None = None,
                 depthwise: bool = False) -> nn.Conv2D:
    weight = conv.weight.numpy()  # [out, in/groups, kh, kw]
    groups = conv._groups
    if depthwise:
        if groups != conv._in_channels or groups != conv._out_channels:
            raise ValueError("depthwise pass-through needs groups == in == out channels")
        assert out_keep is not None
        weight = weight[out_keep]
        cin = cout = groups = len(out_keep)
    else:
        if groups != 1:
            raise ValueError("only groups=1 convs can be pruned as producer or consumer")
        if out_keep is not None:
            weight = weight[out_keep]
        if in_keep is not None:
            weight = weight[:, in_keep]
        cout, cin = weight.shape[0], weight.shape[1]
    has_bias = conv.bias is not None
    new = nn.Conv2D(cin, cout, conv._kernel_size, stride=conv._stride, padding=conv._padding,
                    dilation=conv._dilation, groups=groups, padding_mode=conv._padding_mode,
                    bias_attr=None if has_bias else False,
                    data_format=cast(Literal["NCHW", "NHWC"], conv._data_format))
    new.weight.set_value(np.ascontiguousarray(weight))
    if has_bias:
        bias = conv.bias.numpy()
        if out_keep is not None:
            bias = bias[out_keep]
        new.bias.set_value(np.ascontiguousarray(bias))
    new.eval()
    return new


def _bn_subset(bn: nn.BatchNorm2D, keep: np.ndarray) -> nn.BatchNorm2D:
    new = nn.BatchNorm2D(len(keep), momentum=bn._momentum, epsilon=bn._epsilon, data_format=bn._data_format)
    for name in ("weight", "bias", "_mean", "_variance"):
        getattr(new, name).set_value(np.ascontiguousarray(getattr(bn, name).numpy()[keep]))
    new.eval()
    return new


def _linear_subset(linear: nn.Linear, in_keep: np.ndarray) -> nn.Linear:
    weight = linear.weight.numpy()[in_keep]  # paddle's Linear weight is [in, out]
    has_bias = linear.bias is not None
    new = nn.Linear(weight.shape[0], weight.shape[1], bias_attr=None if has_bias else False)
    new.weight.set_value(np.ascontiguousarray(weight))
    if has_bias:
        new.bias.set_value(linear.bias.numpy())
    new.eval()
    return new


def forward(net: nn.Layer, inputs: list[np.ndarray]) -> list[np.ndarray]:
    with paddle.no_grad():
        return [net(paddle.to_tensor(x)).numpy() for x in inputs]
