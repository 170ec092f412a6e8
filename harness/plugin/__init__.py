"""The pytest plugin (entry point ``harness`` in the ``pytest11`` group)."""

from harness.plugin.fixtures import harness, harness_session, target, variant
from harness.plugin.hooks import (
                    pytest_addoption,
                    pytest_configure,
                    pytest_generate_tests,
                    pytest_sessionfinish,
                    pytest_terminal_summary,
)

__all__ = ["harness", "harness_session", "target", "variant", "pytest_addoption", "pytest_configure",
           "pytest_generate_tests", "pytest_sessionfinish", "pytest_terminal_summary"]
