"""Accuracy jobs: a labelled image set on the device, top-1 counted there, outputs sent back.

Job field (kind "accuracy"): ``"accuracy": {"file": <image set .npz on the device>,
"limit": <at most this many images, optional>}``. The agent runs the model once per image
(inputs made by images.model_input, the zoo build's own preprocessing), counts the images whose
top-1 class (argmax of the first output's last axis) is the label, and sends an "outputs"
event (every image's outputs, so the host can compare them with the baseline's on the same
images) and a result with ``"accuracy": {"correct", "count", "file_images"}``.

Python 3.6 compatible; numpy comes with the runtime.
"""

from .images import load_image_set, model_input
from .memory import memory_snapshot
from .outputs import encode_tensor, outputs_result
from .protocol import AgentFailure

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments only
if TYPE_CHECKING:
    from typing import Callable  # noqa: F401 (named only in type comments, which ruff does not read)

    from .protocol import EventStream  # noqa: F401 (named only in type comments, which ruff does not read)
    from .runtimes.base import BaseAdapter  # noqa: F401 (named only in type comments, which ruff does not read)


def check_accuracy_job(job):
    # type: (dict) -> None
    """AgentFailure("protocol") unless job.accuracy names an image set file (and a sane limit)."""
    spec = job.get("accuracy")
    if not isinstance(spec, dict) or not isinstance(spec.get("file"), str) or not spec["file"]:
        raise AgentFailure("protocol", "job.accuracy must be an object with the image set's file")
    limit = spec.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise AgentFailure("protocol", "job.accuracy.limit must be a positive integer")


def run_accuracy(job, adapter, run_once, stream, import_ns, load_ns, first_ns, memory):
    # type: (dict, BaseAdapter, Callable[[], object], EventStream, int, int, int, dict) -> dict
    """Run every image of the set, count top-1 hits, send the outputs and the counts."""
    spec = job["accuracy"]
    try:
        image_set = load_image_set(spec["file"])
    except (OSError, ValueError) as exc:
        raise AgentFailure("model-missing", "image set %s cannot be read: %s" % (spec["file"], exc)) from exc
    count = image_set["count"] if spec.get("limit") is None else min(image_set["count"], int(spec["limit"]))
    shape = list(job["input"]["shape"])
    stream.emit("progress", phase="outputs", images=count)
    outputs = []
    correct = 0
    labels = image_set["labels"]
    for index in range(count):
        adapter.place(model_input(image_set["images"], index, image_set["max_value"], shape))
        run_once()
        arrays = adapter.outputs()
        primary = arrays[0].reshape(-1)
        correct += int(int(primary.argmax()) == int(labels[index]))
        outputs.append([encode_tensor(array) for array in arrays])
    memory["end"] = memory_snapshot()
    stream.emit("outputs", seeds=list(range(count)), outputs=outputs)
    return outputs_result(job, adapter, "accuracy", (import_ns, load_ns, first_ns), memory, stream,
                          accuracy={"correct": correct, "count": count, "file_images": image_set["count"]})
