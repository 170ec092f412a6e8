"""Helpers shared by the harness's own tests: imported as ``helpers.<module>``.

How it is importable: the test directories have no ``__init__.py`` (pytest's default
"prepend" import mode), and ``pythonpath = ["tests"]`` in pyproject.toml's pytest settings
puts this folder's parent on ``sys.path`` for ``pytest tests/``, ``pytest tests/unit/x.py``
and ``make test`` alike, before any test module is imported. Test modules import from here,
never from each other.

One module per concern:

- ``paths``: the repo and its interpreters
- ``project``: a project's target files and manifest, written for one test; throw-away projects
- ``suites``: ``python -m pytest suites/...`` in a subprocess, as a user runs it
- ``results``: what such a run left behind (store rows, junit cases)
- ``records``: MeasurementRecord / RunInfo factories for tests that write a store directly
- ``agent_jobs``: one agent job run by hand under any interpreter
- ``interpreters``: pyenv's other Pythons (3.6.15, 3.10.13), or a skip / failure saying why
- ``lab_lock``: one lab test module at a time on this machine
- ``loopback_sshd``: a real sshd on a loopback port as an SSH "device"
- ``faulty_transports``: transports that corrupt what they upload
- ``processes``: reading /proc (command lines, liveness)
- ``device_lock_checks``, ``killed_orchestrator``: checks that more than one lab module runs
  against its own lab

Shared fixtures (``demo_zoo``, ``pg_cluster``; ``lab_tests_lock`` for integration tests)
live in the conftest.py files, not here.
"""
