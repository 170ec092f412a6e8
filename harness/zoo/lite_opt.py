"""Paddle Lite `opt` for one model, run by the export worker in the Paddle Lite interpreter.

    <lite python> -m harness.zoo.lite_opt --model-file M.pdmodel --param-file M.pdiparams \\
        --out DIR/model --valid-targets x86|arm [--quant-int8] \\
        [--check OUT.npy --input-shape 1,3,64,64 --seeds 0,1,2]

paddlelite 2.13rc0 has no cp311 wheels, so this runs under a separate interpreter (on this
machine `.venv-lite`, Python 3.10, numpy<2) and imports nothing from the harness but
`harness.agent.inputs` (stdlib + lazy numpy). One process per conversion: opt aborts the
process on a bad model (glog FATAL -> SIGABRT) and segfaults on graphs with `paddle.flatten`
on x86, so the caller sees a signal, not a hang or a half-written file.

Writes OUT.nb (naive_buffer), then *normalises its header*: opt copies its version string
("v2.13-rc") into a 16-byte field and leaves uninitialised stack bytes after the NUL
(measured: bytes 11-17 differ between two runs on the same input). Zeroing them makes
rebuilds byte-identical; the loader reads the field as a C string, so outputs are unchanged.

With --check, runs the new .nb with MobileConfig on structured inputs (seeds) and saves the
outputs to the .npy, for the export worker to compare with the fp32 reference. numpy>=2 is
refused there: Lite's `Tensor.from_numpy` silently writes garbage under numpy 2.

Prints one line `[lite-result] {json}` on stdout on success; exit 1 with `[lite-error] msg`
on a failure it can describe.
"""

import argparse
import json
import os
import platform
import sys

VERSION_FIELD = (2, 18)  # bytes [2, 18) of a naive_buffer .nb: the opt version, NUL-terminated
FLATTEN_OPS = ("flatten_contiguous_range", "flatten2", "flatten")


def count_ops(model_file, names):
    """OpDesc `type` fields (protobuf field 3: tag 0x1a, one-byte length) naming one of `names`.

    A legacy program also lists every op name paddle knows in its op-version map, so a plain
    substring count would be wrong (same technique as the paddle-inference adapter)."""
    with open(model_file, "rb") as handle:
        data = handle.read()
    return sum(data.count(b"\x1a" + bytes(bytearray([len(n)])) + n.encode()) for n in names)


def normalise_header(path):
    """Zero the bytes after the NUL of the .nb's version field; return how many changed."""
    with open(path, "r+b") as handle:
        head = bytearray(handle.read(VERSION_FIELD[1]))
        if len(head) < VERSION_FIELD[1]:
            return 0
        start, end = VERSION_FIELD
        try:
            nul = head.index(0, start, end)
        except ValueError:
            return 0
        changed = sum(1 for b in head[nul:end] if b)
        if changed:
            head[nul:end] = bytes(end - nul)
            handle.seek(0)
            handle.write(head)
    return changed


def _versions():
    out = {"python": platform.python_version()}
    try:
        from importlib import metadata

        for dist in ("paddlelite", "numpy"):
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                out[dist] = "not-installed"
    except ImportError:  # Python < 3.8
        pass
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m harness.zoo.lite_opt")
    parser.add_argument("--model-file", required=True)
    parser.add_argument("--param-file", required=True)
    parser.add_argument("--out", required=True, help="output path without .nb")
    parser.add_argument("--valid-targets", required=True)
    parser.add_argument("--quant-int8", action="store_true")
    parser.add_argument("--check", default="")
    parser.add_argument("--input-shape", default="")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args(argv)

    try:
        from paddlelite import lite
    except ImportError as exc:
        return _fail(f"paddlelite cannot be imported in {sys.executable}: {exc} (Paddle Lite needs its own "
                     "interpreter, e.g. a Python 3.10 venv with paddlelite==2.13rc0 and numpy<2; point "
                     "HARNESS_LITE_PYTHON at it)")
    for path in (args.model_file, args.param_file):
        if not os.path.isfile(path):
            return _fail(f"input file not found: {path}")
    if args.model_file.endswith(".json"):
        return _fail("opt refuses PIR .json programs: give it the legacy .pdmodel "
                     "(export with FLAGS_enable_pir_api=0)")

    if "x86" in args.valid_targets.split(","):
        flattens = count_ops(args.model_file, FLATTEN_OPS)
        if flattens:
            return _fail(f"the program has {flattens} flatten op(s): Paddle Lite's opt segfaults on them for x86; "
                         "write flatten as paddle.reshape(x, [0, -1]) in the net and export again")

    opt = lite.Opt()
    opt.set_model_file(args.model_file)
    opt.set_param_file(args.param_file)
    opt.set_valid_places(args.valid_targets)
    opt.set_model_type("naive_buffer")
    opt.set_optimize_out(args.out)
    if args.quant_int8:
        opt.set_quant_model(True)
        opt.set_quant_type("QUANT_INT8")
    sys.stdout.flush()
    opt.run()  # prints its own progress; aborts the process on failure
    sys.stdout.flush()
    nb = args.out + ".nb"
    if not os.path.isfile(nb) or not os.path.getsize(nb):
        return _fail(f"opt finished but wrote no {nb}")
    result = {
        "file": nb,
        "size": os.path.getsize(nb),
        "header_bytes_normalised": normalise_header(nb),
        "versions": _versions(),
        "options": {"valid_targets": args.valid_targets, "optimize_out_type": "naive_buffer",
                    "quant_model": bool(args.quant_int8),
                    "quant_type": "QUANT_INT8" if args.quant_int8 else None},
    }
    if args.check:
        import numpy as np

        if int(np.__version__.split(".")[0]) >= 2:
            return _fail(f"numpy {np.__version__} in {sys.executable}: Paddle Lite's Tensor.from_numpy writes "
                         "garbage under numpy 2; install numpy<2 there")
        from harness.agent.inputs import structured_input

        shape = [int(d) for d in args.input_shape.split(",")]
        seeds = [int(s) for s in args.seeds.split(",")]
        config = lite.MobileConfig()
        config.set_model_from_file(nb)
        predictor = lite.create_paddle_predictor(config)
        outputs = []
        for seed in seeds:
            predictor.get_input(0).from_numpy(structured_input(shape, "float32", seed))
            predictor.run()
            outputs.append(np.array(predictor.get_output(0).numpy(), dtype="float32", copy=True))
        np.save(args.check, np.stack(outputs))
        result["check"] = {"file": args.check, "seeds": seeds}
    sys.stdout.write("[lite-result] " + json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0


def _fail(message):
    sys.stdout.write("[lite-error] " + message + "\n")
    sys.stdout.flush()
    return 1


if __name__ == "__main__":
    sys.exit(main())
