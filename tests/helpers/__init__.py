"""Helpers shared by the harness's own tests: imported as ``helpers.<module>``.

How it is importable: the test directories have no ``__init__.py`` (pytest's default
"prepend" import mode), and ``pythonpath = ["tests"]`` in pyproject.toml's pytest settings
puts this folder's parent on ``sys.path`` for ``pytest tests/``, ``pytest tests/unit/x.py``
and ``make test`` alike, before any test module is imported. Test modules import from here,
never from each other.

One module per concern:

- ``paths``: the repo and its interpreters
- ``project``: a project's target files and manifest, written for one test
- ``suites``: ``python -m pytest suites/...`` in a subprocess, as a user runs it
- ``results``: what such a run left behind (store rows, junit cases)
- ``records``: MeasurementRecord / RunInfo factories for tests that write a store directly
- ``lab_lock``: one lab test module at a time on this machine
- ``processes``: reading /proc (command lines, liveness)
- ``device_lock_checks``, ``killed_orchestrator``, ``faulty_transports``: checks and parts
  that more than one lab module runs against its own lab
"""
