"""Training the demo nets on the digits (Paddle dygraph, CPU): from scratch, fine-tuning after
pruning, and knowledge distillation, with progress lines.

One loop serves all three: Adam, cosine-decayed learning rate, batch BATCH, cross-entropy on
the labels, plus (distillation) Hinton's soft-target term KL(teacher_T || student_T) * T^2
with weight `alpha`. Each ends with *precise BatchNorm*: the running statistics are set to
those of BN_BATCHES training batches (momentum 0 then restored), because the running averages
after a few hundred steps lag the weights (measured: mobilenet_v3_small 42 % test accuracy
without, 97 % with, after the same 3 epochs).

Shuffling comes from numpy.random.RandomState(seed) and paddle.seed(seed): same seed, same
weights on this machine (CPU kernels may differ in the last bits elsewhere).
Python 3.11, build worker side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from harness.agent.images import model_inputs

BATCH = 32
BN_BATCHES = 8


@dataclass(frozen=True)
class Schedule:
    """How long and how fast one training run goes."""

    epochs: int
    learning_rate: float
    temperature: float = 4.0  # distillation only
    alpha: float = 0.7        # distillation only: weight of the soft-target term

    def record(self, distilled: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"optimizer": "Adam", "lr_schedule": "cosine", "epochs": self.epochs,
                               "learning_rate": self.learning_rate, "batch_size": BATCH,
                               "precise_bn_batches": BN_BATCHES}
        if distilled:
            out.update(loss="(1-alpha) * cross-entropy + alpha * T^2 * KL(teacher_T || student_T)",
                       temperature=self.temperature, alpha=self.alpha)
        return out


def batches_of(images: np.ndarray, max_value: float, shape: list[int]) -> np.ndarray:
    """All of `images` as model inputs (harness.agent.images preprocessing)."""
    batch: np.ndarray = model_inputs(images, max_value, [len(images)] + list(shape[1:]))
    return batch


def train(net: nn.Layer, x: np.ndarray, y: np.ndarray, schedule: Schedule, seed: int,
          say: Callable[[str], None], what: str, teacher: nn.Layer | None = None) -> dict[str, Any]:
    """Train `net` in place on inputs `x` (float32, model layout) and labels `y`; eval mode after.

    Returns a record: the schedule, steps, the last epoch's mean loss, seconds."""
    paddle.seed(seed)
    rng = np.random.RandomState(seed)
    steps_per_epoch = -(-len(y) // BATCH)
    decay = paddle.optimizer.lr.CosineAnnealingDecay(schedule.learning_rate, schedule.epochs * steps_per_epoch)
    optimizer = paddle.optimizer.Adam(learning_rate=decay, parameters=net.parameters())
    teacher_logits = None if teacher is None else logits_of(teacher, x)  # once: the teacher is frozen
    started = time.monotonic()
    losses: list[float] = []
    for epoch in range(schedule.epochs):
        net.train()
        order = rng.permutation(len(y))
        losses = []
        for start in range(0, len(y), BATCH):
            pick = order[start:start + BATCH]
            inputs = paddle.to_tensor(x[pick])
            logits = net(inputs)
            loss = F.cross_entropy(logits, paddle.to_tensor(y[pick]))
            if teacher_logits is not None:
                soft = F.softmax(paddle.to_tensor(teacher_logits[pick]) / schedule.temperature, axis=-1)
                log_student = F.log_softmax(logits / schedule.temperature, axis=-1)
                kl = F.kl_div(log_student, soft, reduction="sum") / len(pick) * schedule.temperature ** 2
                loss = (1.0 - schedule.alpha) * loss + schedule.alpha * kl
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            decay.step()
            losses.append(float(loss))
        say(f"{what}: epoch {epoch + 1}/{schedule.epochs}, loss {np.mean(losses):.3f} "
            f"[{time.monotonic() - started:.0f} s]")
    precise_batchnorm(net, x, rng)
    return {**schedule.record(distilled=teacher is not None), "steps": schedule.epochs * steps_per_epoch,
            "final_epoch_loss": round(float(np.mean(losses)), 4) if losses else None,
            "train_images": int(len(y)), "seconds": round(time.monotonic() - started, 1), "seed": seed}


def precise_batchnorm(net: nn.Layer, x: np.ndarray, rng: np.random.RandomState) -> None:
    """Every BatchNorm's running mean/var := the statistics of BN_BATCHES random training batches."""
    bns = [layer for layer in net.sublayers() if isinstance(layer, nn.BatchNorm2D)]
    net.eval()
    if not bns:
        return
    pick = rng.choice(len(x), size=min(len(x), BATCH * BN_BATCHES), replace=False)
    saved = [layer._momentum for layer in bns]
    for layer in bns:
        layer._momentum = 0.0
        layer.train()
    with paddle.no_grad():
        net(paddle.to_tensor(x[pick]))  # one batch of BN_BATCHES x BATCH images: its statistics exactly
    for layer, momentum in zip(bns, saved, strict=True):
        layer._momentum = momentum
        layer.eval()


def logits_of(net: nn.Layer, x: np.ndarray) -> np.ndarray:
    """The (eval-mode) net's outputs for all of `x`, in chunks of 64."""
    net.eval()
    with paddle.no_grad():
        return np.concatenate([net(paddle.to_tensor(x[start:start + 64])).numpy() for start in range(0, len(x), 64)])
