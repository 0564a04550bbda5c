#!/usr/bin/env bash
# Install what the tests and the demo need, beyond Rust and Python, into one virtualenv:
#   moto server (the local AWS), boto3 (seeding), checkov and the AWS CLI (virtualenvs of their
#   own), and with --demo cargo-lambda.
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
  py -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.2.5,<6' >&2
fi

# checkov in a virtualenv of its own: installed beside moto it downgrades boto3.
CHECKOV_VENV="${FLEETGUARD_CHECKOV_VENV:-$(dirname "$VENV")/checkov-venv}"
if [[ ! -x "$CHECKOV_VENV/bin/checkov" ]]; then
  echo "ensure-tools: installing checkov into $CHECKOV_VENV (infra checks)" >&2
  python3 -m venv "$CHECKOV_VENV" >&2
  "$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'checkov==3.3.30' >&2
fi

# The AWS CLI, in a virtualenv of its own (it pins botocore), for the test that runs the docs'
# commands against the local AWS.
AWSCLI_VENV="${FLEETGUARD_AWSCLI_VENV:-$(dirname "$VENV")/awscli-venv}"
if [[ ! -x "$AWSCLI_VENV/bin/aws" ]]; then
  echo "ensure-tools: installing the AWS CLI into $AWSCLI_VENV (docs checks)" >&2
  python3 -m venv "$AWSCLI_VENV" >&2
  "$AWSCLI_VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'awscli>=1.44,<2' >&2
fi

# The IAM policy simulator (npm @cloud-copilot/iam-simulate) for the static IAM test, pinned by
# tests/infra/iam-sim/package-lock.json, installed with the machine's Node.js.
IAM_SIM="${FLEETGUARD_IAM_SIM:-$(dirname "$VENV")/iam-sim}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if command -v npm >/dev/null 2>&1 && ! cmp -s "$ROOT/tests/infra/iam-sim/package-lock.json" "$IAM_SIM/package-lock.json"; then
  echo "ensure-tools: installing the IAM policy simulator into $IAM_SIM" >&2
  mkdir -p "$IAM_SIM"
  cp "$ROOT/tests/infra/iam-sim/package.json" "$ROOT/tests/infra/iam-sim/package-lock.json" "$IAM_SIM/"
  (cd "$IAM_SIM" && npm ci --no-audit --no-fund --silent >&2)
fi

if [[ $want_demo == 1 ]] && [[ ! -x "$VENV/bin/cargo-lambda" ]]; then
  echo "ensure-tools: installing cargo-lambda" >&2
  py -m pip install --quiet --disable-pip-version-check 'cargo-lambda>=1.8,<2' >&2
fi

echo "$VENV/bin/python"
