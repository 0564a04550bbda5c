#!/usr/bin/env bash
# Install what the tests and the demo need, beyond Rust and Python, into one virtualenv:
#   moto server (the local AWS), boto3 (seeding), and with --demo cargo-lambda.
# Idempotent and quick when everything is already there. Prints the venv's python path last.
set -euo pipefail

VENV="${FLEETGUARD_VENV:-$HOME/.cache/fleetguard/venv}"
want_demo=0
[[ "${1:-}" == "--demo" ]] && want_demo=1

py() { "$VENV/bin/python" "$@"; }

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "ensure-tools: creating virtualenv $VENV" >&2
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >&2
fi

if ! py -c 'import moto, moto.server, flask, boto3' 2>/dev/null; then
  echo "ensure-tools: installing moto[server] (local AWS)" >&2
  py -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1,<6' >&2
fi

if [[ $want_demo == 1 ]] && [[ ! -x "$VENV/bin/cargo-lambda" ]]; then
  echo "ensure-tools: installing cargo-lambda" >&2
  py -m pip install --quiet --disable-pip-version-check 'cargo-lambda>=1.8,<2' >&2
fi

echo "$VENV/bin/python"
