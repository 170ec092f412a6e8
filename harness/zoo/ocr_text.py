"""The text lines the PP-OCR model reads: the font, how a line is rendered, and which strings.

How the model is meant to be used (checked in notes/paddle-stack.md): render a string with
DejaVuSans 28 px, black on white, resize to height 32 keeping the aspect ratio; input `x`
[N, 3, 32, W], pixels (v/255 - 0.5) / 0.5, CHW. Accuracy is measured on EVAL_STRINGS; the
int8 variant is calibrated on `calibration_strings` (seeds 10_000 + seed + i), never on them.

Importing this module is cheap (stdlib only): the host's build key hashes the font
(`find_font`) without numpy or Pillow; `render_line` imports them when called.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import random
from typing import Any

HEIGHT = 32
FONT_SIZE = 28
FONT_FILE = "DejaVuSans.ttf"
CALIBRATION_SEED_OFFSET = 10_000

#: What accuracy is measured on: the kind of text an edge OCR model reads (labels, numbers,
#: units, mixed case), all characters in ppocr_keys_v1.txt.
EVAL_STRINGS: tuple[str, ...] = (
    "HELLO 2026", "Paddle Lite 2.13", "latency 5ms", "Edge AI benchmark", "Jetson Nano 4GB",
    "int8 vs fp32", "p99 = 12.5 ms", "MobileNetV3 small", "ONNX Runtime 1.31", "power 4.2 W",
    "Batch size 8", "Model zoo v2", "Temperature 61C", "Throughput 240 fps", "Release 3.3.1",
    "memory 1.5 GB", "Order 4711", "quantized weights", "Raspberry Pi 5", "Total: 98.7%",
)
_WORDS = ("edge", "model", "input", "output", "tensor", "device", "board", "camera", "frame",
          "speed", "label", "serial", "price", "total", "invoice", "street", "station", "report",
          "TEXT", "OCR", "CPU", "GPU", "NPU", "ARM", "Lite", "Zoo", "Board", "Sensor", "Delta")
_RANDOM_LETTERS = "ABCDEFGHKLMNPRSTXYZabdefghkmnrstuxyz"


def find_font() -> str:
    """DejaVuSans.ttf from the system fonts, else the copy bundled with matplotlib."""
    candidates = [f"/usr/share/fonts/truetype/dejavu/{FONT_FILE}"]
    candidates += sorted(glob.glob(f"/usr/share/fonts/**/{FONT_FILE}", recursive=True))
    candidates += sorted(glob.glob(f"/usr/local/share/fonts/**/{FONT_FILE}", recursive=True))
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(os.path.join(location, "mpl-data", "fonts", "ttf", FONT_FILE))
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"no {FONT_FILE} found (looked in /usr/share/fonts and matplotlib's "
                            "bundled fonts): install fonts-dejavu-core or matplotlib")


def rendering_description(font_path: str) -> str:
    """How the lines are rendered, in words (recorded in build-info)."""
    return (f"text lines rendered with Pillow ({os.path.basename(font_path)} {FONT_SIZE} px, black on white, "
            f"height {HEIGHT}, natural width)")


def render_line(text: str, font_path: str | None = None, height: int = HEIGHT) -> Any:
    """One text line as the model's input: float32 [1, 3, height, W], (v/255 - 0.5) / 0.5."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path or find_font(), FONT_SIZE)
    left, top, right, bottom = (int(edge) for edge in font.getbbox(text))
    image = Image.new("RGB", (right - left + 16, bottom - top + 12), "white")
    ImageDraw.Draw(image).text((8 - left, 6 - top), text, fill="black", font=font)
    width = max(8, int(round(image.width * height / image.height)))
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return ((array - 0.5) / 0.5)[np.newaxis].astype(np.float32)


def calibration_strings(count: int, seed: int = 0) -> list[str]:
    """`count` deterministic text lines (seeds 10_000 + seed + i), none of them an EVAL_STRING."""
    lines = []
    for i in range(count):
        rng = random.Random(CALIBRATION_SEED_OFFSET + seed + i)
        parts = []
        for _ in range(rng.randint(1, 3)):
            pick = rng.random()
            if pick < 0.5:
                parts.append(rng.choice(_WORDS))
            elif pick < 0.8:
                parts.append(str(rng.randint(0, 99999)) if rng.random() < 0.5 else f"{rng.uniform(0, 100):.1f}")
            else:
                parts.append("".join(rng.choice(_RANDOM_LETTERS) for _ in range(rng.randint(2, 6))))
        line = " ".join(parts)
        lines.append(line + "!" if line in EVAL_STRINGS else line)
    return lines
