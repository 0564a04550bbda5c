# fleetguard: `make demo` (every function invoked locally against a local AWS) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python tools (moto, boto3, cargo-lambda) live in one virtualenv, installed on first use.
export FLEETGUARD_VENV ?= $(HOME)/.cache/fleetguard/venv
PYTHON := $(FLEETGUARD_VENV)/bin/python
export PYTHON

.PHONY: help tools demo test fmt-check lint unit build clean

help:
	@echo "make demo   every function invoked with its sample events against a local AWS"
	@echo "make test   formatting, clippy, unit and integration tests"

tools:
	@scripts/ensure-tools.sh >/dev/null

demo:
	@scripts/ensure-tools.sh --demo >/dev/null
	@$(PYTHON) scripts/demo.py

fmt-check:
	cargo fmt --all --check

lint:
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test --workspace

test: tools fmt-check lint unit

clean:
	cargo clean
