"""Repo-level conftest: makes `pytest suites/` and `pytest tests/` work from the root.

The harness plugin itself is registered through the `pytest11` entry point of the
installed package; nothing else is needed here.
"""
