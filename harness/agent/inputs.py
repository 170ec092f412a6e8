"""Seeded, structured model inputs, generated on the device.

Why structured: i.i.d. noise makes every input look alike to a randomly initialised CNN, so
outputs barely move between inputs and agreement metrics become meaningless. These inputs
are low-frequency blocks plus per-channel offsets plus fine noise, like a natural image.

numpy is imported lazily: the agent itself is stdlib-only and only runtime adapters (which
run in an interpreter that has numpy) call this. Python 3.6 compatible.
"""

DTYPES = ("float32", "float16", "int8", "uint8", "int32", "int64")


def structured_input(shape, dtype="float32", seed=0):
    """Return one array of `shape`: NCHW/NHWC image-like for rank 4, smooth noise otherwise."""
    import numpy as np

    rng = np.random.RandomState(seed)
    shape = tuple(int(d) for d in shape)
    if len(shape) == 4:
        n, c, h, w = shape
        channels_last = c > 4 and w <= 4  # NHWC layout such as 1x224x224x3
        if channels_last:
            n, h, w, c = shape
        out = np.empty((n, c, h, w), dtype=np.float64)
        for i in range(n):
            grid = max(2, min(8, h // 8 or 2))
            coarse = rng.uniform(-1.0, 1.0, size=(c, grid, grid))
            reps_h = -(-h // grid)
            reps_w = -(-w // grid)
            blocks = np.repeat(np.repeat(coarse, reps_h, axis=1), reps_w, axis=2)[:, :h, :w]
            offsets = rng.uniform(-0.5, 0.5, size=(c, 1, 1))
            fine = rng.normal(0.0, 0.1, size=(c, h, w))
            out[i] = blocks + offsets + fine
        if channels_last:
            out = out.transpose(0, 2, 3, 1)
    else:
        base = rng.normal(0.0, 1.0, size=shape)
        out = base
    return _cast(out, dtype)


def _cast(values, dtype):
    import numpy as np

    if dtype not in DTYPES:
        raise ValueError("unsupported input dtype %r (supported: %s)" % (dtype, ", ".join(DTYPES)))
    if dtype in ("float32", "float16"):
        return values.astype(dtype)
    if dtype == "uint8":
        return np.clip((values + 1.5) * 85.0, 0, 255).astype("uint8")
    if dtype == "int8":
        return np.clip(values * 60.0, -128, 127).astype("int8")
    return np.round(np.abs(values) * 10.0).astype(dtype)


def input_batch(spec, count, seed=0):
    """`count` different inputs for one InputSpec-like dict {shape, dtype}, seeds seed..seed+count-1."""
    return [structured_input(spec["shape"], spec.get("dtype", "float32"), seed + i) for i in range(count)]
