# The two set-up commands of the README: `make demo` and `make test`.
# Everything they need is installed here, from PyPI, into three virtual environments:
#   .venv          Python 3.11: the harness, paddlepaddle (Paddle Inference), pandas, matplotlib, pytest
#   .venv-lite     Python 3.10: paddlelite 2.13rc0 with numpy<2 (no cp311 wheels; numpy 2 corrupts inputs)
#   .venv-labgrid  Python 3.11: labgrid (its coordinator, exporter and client; its grpcio/protobuf pins and
#                  its pytest plugin stay out of .venv); the harness runs its labgrid-client
SHELL := /bin/bash
PYTHON ?= python3
PYTHON_LITE ?= $(shell p=$$(pyenv prefix 3.10.13 2>/dev/null) && echo $$p/bin/python3.10 || command -v python3.10)
VENV := .venv
LITE := .venv-lite
LABGRID := .venv-labgrid
LABGRID_VERSION := 26.0.1
PYTEST_FLAGS ?=

.PHONY: demo test bench envs zoo clean system-deps nightly lint

# Debian packages the tests use: OpenSSH's server (the lab's devices, the SSH transport
# tests), nftables and iproute2 (lab network faults), Chromium (reports opened in a real
# browser), PostgreSQL (the shared store), qemu-user-static, binfmt-support and debootstrap
# (the emulated aarch64 lab device). Installed only when missing; needs root, as CI and the lab do.
SYSTEM_PACKAGES := openssh-server:/usr/sbin/sshd nftables:/usr/sbin/nft iproute2:/usr/sbin/ip chromium:/usr/bin/chromium \
	postgresql:/usr/lib/postgresql/15/bin/initdb qemu-user-static:/usr/bin/qemu-aarch64-static \
	binfmt-support:/usr/sbin/update-binfmts debootstrap:/usr/sbin/debootstrap
system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do pkg=$${entry%%:*}; bin=$${entry#*:}; \
		[ -x "$$bin" ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "== installing Debian packages:$$missing"; \
		if [ "$$(id -u)" -ne 0 ]; then echo "make: run as root, or install:$$missing"; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null \
			|| { echo "make: apt-get install$$missing failed"; exit 1; }; \
	fi

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "make: $(PYTHON) is Python %d.%d; the harness needs 3.11+ (set PYTHON=...)" % sys.version_info[:2])'
	@echo "== [1/3] creating $(VENV): harness + paddlepaddle + pandas + matplotlib + pytest (about a minute)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --progress-bar off -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(VENV)/bin/python -c 'import harness, paddle.inference, pandas, matplotlib, jinja2, paramiko' \
		|| { echo "make: installing into $(VENV) failed (see the pip output above)"; exit 1; }
	@touch $@

$(LITE)/.installed:
	@test -x "$(PYTHON_LITE)" || { echo "make: Paddle Lite needs Python 3.10: install it (pyenv install 3.10.13) or set PYTHON_LITE=/path/to/python3.10"; exit 1; }
	@echo "== [2/3] creating $(LITE): paddlelite 2.13rc0 + numpy<2 on Python 3.10"
	$(PYTHON_LITE) -m venv $(LITE)
	$(LITE)/bin/pip install --progress-bar off paddlelite==2.13rc0 'numpy<2' 2>&1 | grep -v "^WARNING: Location" || true
	@$(LITE)/bin/python -c 'import paddlelite.lite' || { echo "make: installing paddlelite into $(LITE) failed"; exit 1; }
	@touch $@

$(LABGRID)/.installed:
	@echo "== [3/3] creating $(LABGRID): labgrid $(LABGRID_VERSION) (coordinator, exporter, client)"
	$(PYTHON) -m venv $(LABGRID)
	$(LABGRID)/bin/pip install --progress-bar off labgrid==$(LABGRID_VERSION) 2>&1 | grep -v "^WARNING: Location" || true
	@$(LABGRID)/bin/labgrid-client --help >/dev/null || { echo "make: installing labgrid into $(LABGRID) failed"; exit 1; }
	@touch $@

envs: $(VENV)/.installed $(LITE)/.installed $(LABGRID)/.installed

zoo: envs
	$(VENV)/bin/harness zoo build

# Builds the demo zoo, benchmarks it on the local target, and ends with the report's path.
# Failed budget or fidelity checks are findings, shown in the report: the demo still succeeds
# (pytest exit 1); a harness error, usage error or interruption (exit >= 2) fails it.
demo: zoo
	$(VENV)/bin/harness targets check local
	$(VENV)/bin/python -m pytest suites/ --target=local --profile-ops -v $(PYTEST_FLAGS); status=$$?; \
		echo; if [ $$status -eq 1 ]; then echo "demo: some variants miss a budget or disagree with their baseline: see the report"; \
		elif [ $$status -ne 0 ]; then exit $$status; fi; \
		$(VENV)/bin/harness report latest

# The nightly recipe: the fleet against last night, then the trend of the last 30 nights.
nightly: envs
	$(VENV)/bin/python -m pytest suites/ --target=all --run-label nightly --baseline latest:nightly --fail-on-regression $(PYTEST_FLAGS); status=$$?; \
		$(VENV)/bin/harness report trend --label nightly --last 30 || exit $$?; exit $$status

# Lint and types of the package, failing on any finding (pyproject.toml: [tool.ruff], [tool.mypy]).
# The agent's own Python 3.6 compile check is tests/unit/test_agent_py36.py.
lint: envs
	$(VENV)/bin/ruff check harness
	$(VENV)/bin/mypy

# The whole test suite (unit, integration with real runtimes, benchmarks run once each), after lint.
test: envs system-deps lint
	$(VENV)/bin/python -m pytest tests/ --benchmark-disable $(PYTEST_FLAGS)

# The harness's own overhead benchmarks, measured for real.
bench: envs
	$(VENV)/bin/python -m pytest tests/bench --benchmark-only $(PYTEST_FLAGS)

clean:
	rm -rf $(VENV) $(LITE) .zoo .harness reports/*/
