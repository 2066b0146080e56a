# labcloud.jupyter: set-up, demo and tests. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

# A local cloud started for the tests: a fresh VM's first boot holds the package lock 10 s instead of
# AWS's minute or so (the test of the first boot itself reads what the cloud uses).
TEST_CLOUD := LOCALCLOUD_FIRST_BOOT_SECONDS=$${LOCALCLOUD_FIRST_BOOT_SECONDS:-10}
# The benchmarks launch classes: the quotas an instructor would ask AWS for (40 addresses, and
# room for 40 two-vCPU VMs and more).
BENCH_CLOUD := LOCALCLOUD_QUOTAS=$${LOCALCLOUD_QUOTAS:-elastic-ips=48,standard=256}

# Debian packages the local cloud and the tests use.
DEBS := systemd-container debootstrap iptables iproute2 e2fsprogs btrfs-progs util-linux openssh-client \
        git curl rsync ca-certificates python3-venv chromium chromium-driver

.PHONY: help setup debs venv demo demo-clean lint ruff yamllint ansible-lint sanity syntax \
        build unit modules localcloud-test integration roles molecule e2e cloud-test test bench clean \
        localcloud-up localcloud-down localcloud-status

demo: setup ## The tutorial on the local cloud: launch, configure JupyterLab, tunnel, print the URL
	python tools/demo.py run

demo-clean: $(STAMP) ## Remove everything the demo made (the VM, its key and group, the local cloud)
	python tools/demo.py clean

help: ## Show the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: debs venv ## Install Debian packages and the Python virtualenv (idempotent)

debs: ## Install the Debian packages the local cloud and the tests need
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "Installing Debian packages needs root (sudo make setup)"; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "Debian packages: all present"; fi

venv: $(STAMP) ## Create the virtualenv with the pinned Python packages

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	@cp requirements.txt $(STAMP)

lint: ruff yamllint ansible-lint ## All lint gates

ruff: $(STAMP)
	ruff check .
	ruff format --check .

yamllint: $(STAMP)
	yamllint -s .

ansible-lint: $(STAMP)
	ansible-lint --profile production

syntax: $(STAMP) ## ansible-playbook --syntax-check on every playbook
	@for p in playbooks/*.yml; do ansible-playbook --syntax-check "$$p" >/dev/null || exit 1; echo "syntax ok: $$p"; done

sanity: $(STAMP) ## ansible-test sanity over the collection's plugins
	tests/sanity/run.sh

build: $(STAMP) ## Build the collection artifact and check it installs and documents itself
	tests/build/check.sh

unit: $(STAMP) ## Unit tests (pure logic, no cloud)
	pytest -q tests/unit

modules: $(STAMP) ## Module tests against the local cloud's EC2 API over HTTP
	pytest -q tests/modules

localcloud-test: $(STAMP) ## Local cloud fidelity tests (real machines; needs root)
	pytest -q -m standalone tests/localcloud/test_down.py
	pytest -q -m "not standalone" tests/localcloud

localcloud-up: $(STAMP) ## Start the local cloud in the background and write its environment to .localcloud.env
	python -m localcloud up --env-file .localcloud.env

localcloud-down: $(STAMP) ## Stop the local cloud and remove everything it made
	python -m localcloud down

localcloud-status: $(STAMP) ## List the local cloud's instances, machines and addresses
	python -m localcloud status

integration: $(STAMP) ## Playbook tests against the local cloud (launch, life cycle, rosters, bad input)
	pytest -q tests/integration

roles: $(STAMP) ## Role tests on the local cloud: the molecule scenario step by step, bad input, the installer
	pytest -q -rs tests/roles

molecule: $(STAMP) ## The molecule scenario for configure.yml on two local-cloud machines (create ... destroy)
	@set +e; started=0; \
	if ! python -m localcloud status >/dev/null 2>&1; then $(TEST_CLOUD) python -m localcloud up >/dev/null || exit 1; started=1; fi; \
	eval "$$(python -m localcloud env)"; MOLECULE_GLOB='molecule/*/molecule.yml' molecule test; status=$$?; \
	if [ $$started = 1 ]; then python -m localcloud down; fi; exit $$status

e2e: $(STAMP) ## The tutorial end to end for a class of two, with headless Chromium
	pytest -q tests/e2e

cloud-test: $(STAMP) ## Every test that needs the local cloud, on one local cloud started (and removed) here
	pytest -q -rs -m standalone tests/localcloud/test_down.py
	@set +e; started=0; \
	if ! python -m localcloud status >/dev/null 2>&1; then $(TEST_CLOUD) python -m localcloud up >/dev/null || exit 1; started=1; fi; \
	pytest -q -rs -m "not standalone" tests/localcloud tests/tunnel tests/integration tests/roles tests/e2e; status=$$?; \
	if [ $$started = 1 ]; then python -m localcloud down || status=1; fi; exit $$status

bench: $(STAMP) ## Benchmarks (ratios measured side by side in one run); the host to itself, no local cloud up
	python bench/localcloud.py --cold
	$(BENCH_CLOUD) python -m localcloud up >/dev/null
	python bench/launch.py && python bench/modules.py && python bench/configure.py && python bench/image.py && python bench/first_notebook.py; status=$$?; python -m localcloud down; exit $$status

# The module tests (their own API-only cloud on free ports) run beside the tests of the local cloud's
# machines, which mostly wait for machines and the network; each suite's output is printed when it ends.
test: setup lint syntax sanity build unit ## Every gate and test (what CI runs)
	$(MAKE) --no-print-directory -j2 --output-sync=target modules cloud-test

clean: ## Remove build output and caches (not the virtualenv)
	rm -rf build artifacts .pytest_cache .ruff_cache
