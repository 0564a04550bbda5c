#!/usr/bin/env bash
# Run terraform with the hashicorp/aws provider taken from a local filesystem mirror when one is
# found (offline machines, CI), else from the registry as usual.
#
#   scripts/tf.sh -chdir=infra/examples/ecs-spot init
#
# The mirror is the folder holding registry.terraform.io/hashicorp/aws: $TF_PROVIDER_MIRROR, or
# searched for in the usual places. `scripts/tf.sh --mirror` prints it (exit 1 when none).
set -euo pipefail

find_mirror() {
  local d
  for d in "${TF_PROVIDER_MIRROR:-}" /opt/tf-plugins /usr/share/terraform/plugins \
           /usr/local/share/terraform/plugins "$HOME/.terraform.d/plugins" \
           "$HOME/.local/share/terraform/plugins"; do
    [[ -n "$d" && -d "$d/registry.terraform.io/hashicorp/aws" ]] && { echo "$d"; return 0; }
  done
  # Last resort: a shallow search of the usual roots.
  d="$(find /opt /usr/local /usr/share "$HOME" -maxdepth 5 -type d -path '*/registry.terraform.io/hashicorp/aws' 2>/dev/null | head -n1)"
  [[ -n "$d" ]] && { dirname "$(dirname "$(dirname "$d")")"; return 0; }
  return 1
}

if ! command -v terraform >/dev/null 2>&1; then
  echo "terraform not found: install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)" >&2
  exit 127
fi

if [[ "${1:-}" == "--mirror" ]]; then
  find_mirror
  exit
fi

if mirror="$(find_mirror)"; then
  conf="${TMPDIR:-/tmp}/fleetguard-terraformrc-$(id -u)"
  # Written whole and renamed into place: tests run several Terraform commands at once, and one
  # reading the file while another rewrites it would find no mirror and go to the registry.
  cat > "$conf.$$" <<CONF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
  direct {
    exclude = ["registry.terraform.io/hashicorp/*"]
  }
}
CONF
  mv -f "$conf.$$" "$conf"
  export TF_CLI_CONFIG_FILE="$conf"
fi
export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
exec terraform "$@"
