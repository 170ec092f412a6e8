"""Task accuracy of the PP-OCR recognition model: how well it reads rendered strings.

Output [N, T, 6625]; greedy CTC decode (argmax per step, drop repeats, drop index 0) with
keys = ["blank"] + the lines of ppocr_keys_v1.txt + [" "]. Character accuracy = 1 - (sum of
edit distances) / (sum of lengths of the true strings), over ocr_text.EVAL_STRINGS.
`ocr_character_accuracy()` computes it for any model file, in this interpreter or another
one (`python=`, e.g. a target's onnxruntime interpreter), for the build and the fidelity suite:

    python -m harness.zoo.ocr_accuracy --model M.onnx [--keys K.txt] [--strings-json '[...]']

prints the result as one JSON line. numpy and onnxruntime are imported when measuring. The
module stays importable by Python 3.7 (a target's interpreter): no typing beyond annotations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.zoo.ocr_text import EVAL_STRINGS, find_font, render_line

KEYS_FILE = "ppocr_keys_v1.txt"


def load_keys(path: str) -> list[str]:
    """The CTC alphabet: ["blank"] + the lines of ppocr_keys_v1.txt + [" "]."""
    with open(path, encoding="utf-8") as handle:
        lines = [line.rstrip("\r\n") for line in handle]
    return ["blank"] + lines + [" "]


def ctc_greedy_decode(logits: Any, keys: Sequence[str]) -> str:
    """Greedy CTC: argmax per time step, drop repeats, drop index 0 (blank). logits: [T, C]."""
    best = logits.argmax(axis=-1)
    chars = []
    previous = -1
    for index in best.tolist():
        if index != previous and index != 0 and index < len(keys):
            chars.append(keys[index])
        previous = index
    return "".join(chars)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) between `a` and `b`."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def _default_keys(model_path: str) -> str:
    """The alphabet next to the model, else in ../fp32/ (where the build puts it)."""
    here = os.path.join(os.path.dirname(os.path.abspath(model_path)), KEYS_FILE)
    if os.path.isfile(here):
        return here
    sibling = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(model_path))), "fp32", KEYS_FILE)
    if os.path.isfile(sibling):
        return sibling
    raise FileNotFoundError(f"no {KEYS_FILE} next to {model_path} (or in ../fp32/): pass keys_path")


def _accuracy_elsewhere(python: str, model_path: str, strings: list[str], keys_path: str | None,
                        threads: int) -> dict[str, Any]:
    """ocr_character_accuracy in another interpreter (this module's command line there)."""
    cmd = [python, "-m", "harness.zoo.ocr_accuracy", "--model", os.path.abspath(model_path),
           "--strings-json", json.dumps(strings), "--threads", str(threads)]
    if keys_path:
        cmd += ["--keys", os.path.abspath(keys_path)]
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(f"ocr accuracy under {python} failed: {reason}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def ocr_character_accuracy(model_path: str, strings: Sequence[str] = EVAL_STRINGS, python: str | None = None,
                           keys_path: str | None = None, threads: int = 1) -> dict[str, Any]:
    """Read each of `strings` (rendered) with the model at `model_path` under ONNX Runtime.

    Returns {"character_accuracy", "exact", "count", "characters", "edits", "reads": [{text,
    read, edits}], "onnxruntime", "font"}. With `python` (another interpreter, e.g. a target's
    onnxruntime interpreter) the work runs there, in a subprocess."""
    strings = list(strings)
    if python and os.path.realpath(python) != os.path.realpath(sys.executable):
        return _accuracy_elsewhere(python, model_path, strings, keys_path, threads)

    import numpy as np
    import onnxruntime as ort

    keys = load_keys(keys_path or _default_keys(model_path))
    font = find_font()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(model_path, sess_options=options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    reads: list[dict[str, Any]] = []  # {text, read, edits}
    for text in strings:
        logits = session.run(None, {name: render_line(text, font)})[0]
        read = ctc_greedy_decode(np.asarray(logits)[0], keys)
        reads.append({"text": text, "read": read, "edits": edit_distance(read, text)})
    characters = sum(len(r["text"]) for r in reads)
    edits = sum(r["edits"] for r in reads)
    return {
        "character_accuracy": round(max(0.0, 1.0 - edits / max(characters, 1)), 4),
        "exact": sum(r["read"] == r["text"] for r in reads),
        "count": len(reads),
        "characters": characters,
        "edits": edits,
        "reads": reads,
        "onnxruntime": ort.__version__,
        "font": font,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.zoo.ocr_accuracy",
                                     description="character accuracy of one model file; prints one JSON line")
    parser.add_argument("--model", required=True)
    parser.add_argument("--keys", default=None)
    parser.add_argument("--strings-json", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    strings = json.loads(args.strings_json) if args.strings_json else list(EVAL_STRINGS)
    result = ocr_character_accuracy(args.model, strings, keys_path=args.keys, threads=args.threads)
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
