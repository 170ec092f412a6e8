"""Where the repo and its interpreters are."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "suites"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
"""The harness's own Python 3.11 venv: paddle-inference and onnxruntime are installed there."""
LITE_PYTHON = REPO / ".venv-lite" / "bin" / "python"
"""Python 3.10 with paddlelite and numpy<2 (see the Makefile)."""
