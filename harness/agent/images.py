"""Labelled image sets on the device: the file format, and how an image becomes a model input.

An image set is one `.npz` file (numpy's zip of arrays, read with allow_pickle=False):

    images      uint8 [N, h, w] (grey) or [N, h, w, c]
    labels      int64 [N], the class of each image
    max_value   the largest pixel value the set can hold (16 for scikit-learn's digits)

`model_input(images, index, shape)` is THE preprocessing, used alike by the zoo build (training,
calibration, build-time accuracy) and by the agent on the device, so the same file on the same
images gives the same input bytes everywhere: pixels / max_value, then (x - 0.5) / 0.5 into
[-1, 1], nearest-neighbour resized to the model's height and width (index arithmetic only, no
interpolation library), grey replicated to the model's channels, NCHW or NHWC as `shape` says.

numpy is imported lazily (the agent is stdlib-only; runtimes bring numpy). Python 3.6 compatible.
"""

TYPE_CHECKING = False  # mypy takes this name as True: typing is for the type comments only
if TYPE_CHECKING:
    from typing import Any  # noqa: F401 (named only in type comments, which ruff does not read)

REQUIRED_ARRAYS = ("images", "labels", "max_value")


def load_image_set(path):
    # type: (str) -> dict
    """{"images", "labels", "max_value", "count"} of the `.npz` image set at `path`."""
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        missing = [name for name in REQUIRED_ARRAYS if name not in data.files]
        if missing:
            raise ValueError("image set %s lacks %s" % (path, ", ".join(missing)))
        images = np.asarray(data["images"])
        labels = np.asarray(data["labels"]).astype("int64")
        max_value = float(np.asarray(data["max_value"]).reshape(-1)[0])
    if images.ndim not in (3, 4) or len(images) != len(labels):
        raise ValueError("image set %s: images %s do not match labels %s"
                         % (path, list(images.shape), list(labels.shape)))
    return {"images": images, "labels": labels, "max_value": max_value, "count": int(len(labels))}


def _layout(shape):
    # type: (list) -> tuple
    """(channels_last, channels, height, width) of a rank-4 model input shape."""
    n, a, b, c = [int(d) for d in shape]
    if a > 4 and c <= 4:  # NHWC such as 1x96x96x3
        return True, c, a, b
    return False, a, b, c


def model_inputs(images, max_value, shape):
    # type: (Any, float, list) -> Any
    """A float32 batch in the model's layout from uint8 images (see the module docstring)."""
    import numpy as np

    if len(shape) != 4:
        raise ValueError("image inputs need a rank-4 model input, not %s" % list(shape))
    channels_last, channels, height, width = _layout(shape)
    pixels = np.asarray(images, dtype=np.float64)
    if pixels.ndim == 3:
        pixels = pixels[:, :, :, None]
    rows = np.arange(height) * pixels.shape[1] // height
    cols = np.arange(width) * pixels.shape[2] // width
    resized = pixels[:, rows][:, :, cols]  # N, H, W, c0
    if resized.shape[3] != channels:
        if resized.shape[3] != 1:
            raise ValueError("images have %d channels, the model takes %d" % (resized.shape[3], channels))
        resized = np.repeat(resized, channels, axis=3)
    scaled = (resized / float(max_value) - 0.5) / 0.5
    if not channels_last:
        scaled = scaled.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(scaled, dtype=np.float32)


def model_input(images, index, max_value, shape):
    # type: (Any, int, float, list) -> Any
    """Image `index` as one model input of `shape` (batch 1)."""
    return model_inputs(images[index:index + 1], max_value, shape)
