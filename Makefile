# fleetguard: `make demo` (every function invoked locally against a local AWS) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python tools (moto, boto3, cargo-lambda) live in one virtualenv, installed on first use.
export FLEETGUARD_VENV ?= $(HOME)/.cache/fleetguard/venv
PYTHON := $(FLEETGUARD_VENV)/bin/python
export PYTHON

.PHONY: help tools demo test fmt-check lint unit build bench sim-long clean

help:
	@echo "make demo   every function invoked with its sample events against a local AWS"
	@echo "make test   formatting, clippy, unit, integration and infra tests"
	@echo "make build  the five functions as arm64 Lambda zips (target/lambda/<name>/bootstrap.zip)"
	@echo "make bench  cold start, memory, size and AWS calls, beside a Python twin: bench/RESULTS.md"
	@echo "make sim-long  the fleet and incident simulators over SIM_SEEDS (default 100000) seeds, the storm simulator over STORM_SEEDS (2000)"

tools:
	@scripts/ensure-tools.sh >/dev/null

demo:
	@scripts/ensure-tools.sh --demo >/dev/null
	@$(PYTHON) scripts/demo.py

fmt-check:
	cargo fmt --all --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

# The infra tests are #[ignore]d: run here, unless FLEETGUARD_SKIP_INFRA=1, and then counted as
# skipped in the summary (never a silent pass).
unit:
	cargo test --workspace -- $(if $(filter 1,$(FLEETGUARD_SKIP_INFRA)),,--include-ignored)

test: tools fmt-check lint unit

FUNCTIONS := spot-interruption asg-lifecycle ecs-deployment alarm-fanout instance-maintenance

# Release zips for provided.al2023 on arm64, where infra/ looks for them by default. One package
# at a time: a workspace build would unify the shared crate's features, and every binary would
# link every function's SDK crates.
build:
	@scripts/ensure-tools.sh --demo >/dev/null
	for f in $(FUNCTIONS); do \
	  PATH="$(FLEETGUARD_VENV)/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip -p $$f || exit 1; \
	done

# Release builds for the host and arm64 zips take 20+ minutes cold on 2 cores; RUNS and SCALE tune it.
bench:
	@scripts/ensure-tools.sh --demo >/dev/null
	$(PYTHON) bench/run.py
	$(PYTHON) bench/incidents.py "$${CARGO_TARGET_DIR:-target}/release/alarm-fanout"
	$(PYTHON) bench/hub.py "$${CARGO_TARGET_DIR:-target}/release/spot-interruption"
	$(PYTHON) bench/storm.py "$${CARGO_TARGET_DIR:-target}/release/alarm-fanout"

# The fleet and incident simulators' invariants over many more seeds than make test runs (1,000),
# and the storm simulator's over STORM_SEEDS (make test: 5; each seed is hundreds of invocations).
SIM_SEEDS ?= 100000
STORM_SEEDS ?= 2000
# The functions' metric lines (EMF, on stdout) are left out: gigabytes over 100,000 seeds.
sim-long:
	set -o pipefail; SIM_SEEDS=$(SIM_SEEDS) STORM_SEEDS=$(STORM_SEEDS) cargo test --release -p fleetguard-integration --test simulator --test incident_simulator --test storm_simulator -- --nocapture 2>&1 | grep -av '^{"_aws"'


clean:
	cargo clean
