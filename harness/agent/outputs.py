"""Model outputs on the wire: raw little-endian bytes in base64, with shape and dtype.

Used by fidelity jobs; the host decodes with numpy.frombuffer. numpy is only touched
through the arrays the adapter hands over (the agent itself stays stdlib-only).
"""

import base64

TYPE_CHECKING = False  # mypy takes this name as True: numpy is for the type comment, not imported by the agent
if TYPE_CHECKING:
    import numpy  # noqa: F401 (named only in type comments, which ruff does not read)

    from .protocol import EventStream  # noqa: F401 (named only in type comments, which ruff does not read)
    from .runtimes.base import BaseAdapter  # noqa: F401 (named only in type comments, which ruff does not read)


def encode_tensor(array):
    # type: (numpy.ndarray) -> dict
    contiguous = array.astype(array.dtype.newbyteorder("<"), copy=False)
    if not contiguous.flags["C_CONTIGUOUS"]:
        contiguous = contiguous.copy(order="C")
    return {
        "shape": [int(d) for d in contiguous.shape],
        "dtype": str(contiguous.dtype.name),
        "data_b64": base64.b64encode(contiguous.tobytes()).decode("ascii"),
    }


def outputs_result(job, adapter, kind, phases, memory, stream, **extra):
    # type: (dict, BaseAdapter, str, tuple[int, int, int], dict, EventStream, object) -> dict
    """Emit and return the `result` of a job that sent outputs (fidelity, accuracy):
    `phases` is (import_ns, load_ns, first_inference_ns)."""
    import_ns, load_ns, first_ns = phases
    result = {
        "job_id": job.get("job_id"),
        "kind": kind,
        "runtime": dict(adapter.describe(), name=job["runtime"]["name"], version=adapter.version()),
        "import_ns": import_ns,
        "load_ns": load_ns,
        "first_inference_ns": first_ns,
        "memory": memory,
    }
    result.update(extra)
    stream.emit("result", **result)
    return result
