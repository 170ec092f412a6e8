"""Typed keys for what the plugin keeps in `config.stash`."""

from __future__ import annotations

import pytest

from harness.run.session import HarnessSession

SESSION_KEY = pytest.StashKey[HarnessSession]()
REPORT_KEY = pytest.StashKey[str]()
