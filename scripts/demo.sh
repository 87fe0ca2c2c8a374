#!/usr/bin/env bash
# `make demo`: applies examples/scenarios/two-tenants against the local simulator, shows the SQL
# server protected by the customer tenant's key, checks that a second plan is empty, destroys,
# and shows the protector back on a service-managed key.
#
# Everything lives in .demo/ (wiped at each start, kept afterwards for inspection): the
# simulator's CA, ready file and log, a filesystem mirror with the provider, a CLI config, a
# scratch HOME and the working copy of the example. Terraform runs with an environment built
# from scratch, so a developer's ARM_* variables or personal CLI config cannot leak in, and
# reaches "Azure" only through the simulator's proxy. The simulator is stopped on every exit.
#
# DEMO_EXAMPLE overrides the example folder (to try another configuration with the same
# variables).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
demo="$root/.demo"
seed="$root/simulator/seeds/two-tenants.json"
example="${DEMO_EXAMPLE:-$root/examples/scenarios/two-tenants}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)"
platform="linux_amd64"
simulator_pid=""

step() {
    printf '\n==> %s\n' "$*"
}

fail() {
    echo "demo: $*" >&2
    exit 1
}

stop_simulator() {
    if [[ -n "$simulator_pid" ]] && kill -0 "$simulator_pid" 2>/dev/null; then
        kill -TERM "$simulator_pid" 2>/dev/null || true
        wait "$simulator_pid" 2>/dev/null || true
        echo "demo: simulator stopped (log: $demo/simulator.log)"
    fi
}
trap stop_simulator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[[ -d "$example" ]] || fail "no example at $example"

step "building the provider and the simulator"
cargo build --quiet --workspace --bins
provider_binary="$target_dir/debug/terraform-provider-azurecmk"
simulator_binary="$target_dir/debug/azure-sim"

step "finding terraform"
terraform="$("$root/scripts/ensure-terraform.sh")"
CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$terraform" version | head -n 1

step "starting the simulator"
rm -rf "$demo"
mkdir -p "$demo/home" "$demo/work"
"$simulator_binary" --seed "$seed" --ca-out "$demo/ca.pem" --ready-file "$demo/ready.json" \
    >"$demo/simulator.log" 2>&1 &
simulator_pid=$!
for _ in $(seq 1 300); do
    [[ -s "$demo/ready.json" ]] && break
    kill -0 "$simulator_pid" 2>/dev/null || fail "simulator exited; see $demo/simulator.log"
    sleep 0.1
done
[[ -s "$demo/ready.json" ]] || fail "simulator not ready after 30 s; see $demo/simulator.log"
read_ready() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
        "$demo/ready.json" "$1"
}
proxy="$(read_ready proxy)"
admin="$(read_ready admin)"
echo "proxy $proxy, admin $admin"

step "installing the provider into a filesystem mirror"
package_dir="$demo/mirror/registry.terraform.io/azurecmk/azurecmk/$version/$platform"
mkdir -p "$package_dir"
cp "$provider_binary" "$package_dir/terraform-provider-azurecmk_v$version"
cat >"$demo/terraform.rc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$demo/mirror"
    include = ["registry.terraform.io/azurecmk/*"]
  }
  direct {
    exclude = ["registry.terraform.io/azurecmk/*"]
  }
}
RC
echo "$package_dir"

# The seed's tenant, subscription and deployer credentials, as TF_VAR_* assignments. Secrets
# stay in this array and terraform's environment; nothing prints them.
mapfile -t seed_variables < <(python3 - "$seed" <<'PY'
import json, sys

seed = json.load(open(sys.argv[1]))
for role in ("isv", "customer"):
    for tenant in seed["tenants"]:
        deployer = next(
            (d for d in tenant["deployers"] if d["display_name"] == f"{role}-deployer"), None
        )
        if deployer is None:
            continue
        subscription = next(s for s in seed["subscriptions"] if s["tenant_id"] == tenant["id"])
        print(f"TF_VAR_{role}_tenant_id={tenant['id']}")
        print(f"TF_VAR_{role}_subscription_id={subscription['id']}")
        print(f"TF_VAR_{role}_client_id={deployer['client_id']}")
        print(f"TF_VAR_{role}_client_secret={deployer['client_secret']}")
PY
)
[[ ${#seed_variables[@]} -eq 8 ]] || fail "expected 8 seed variables, read ${#seed_variables[@]}"

tf() {
    (cd "$demo/work" && env -i \
        PATH="$PATH" \
        HOME="$demo/home" \
        TF_CLI_CONFIG_FILE="$demo/terraform.rc" \
        CHECKPOINT_DISABLE=1 \
        TF_IN_AUTOMATION=1 \
        TF_INPUT=0 \
        HTTPS_PROXY="$proxy" \
        SSL_CERT_FILE="$demo/ca.pem" \
        "${seed_variables[@]}" \
        "$terraform" "$@")
}

show_protector() {
    curl -sSf "$admin/admin/state" | python3 "$root/scripts/show-protector.py" "$@"
}

step "protector before apply"
show_protector

step "terraform init ($example)"
cp -R "$example/." "$demo/work/"
rm -rf "$demo/work/.terraform" "$demo/work/.terraform.lock.hcl" "$demo/work/"*.tfstate*
tf init -input=false -no-color

step "terraform apply"
tf apply -auto-approve -input=false -no-color

step "the server's TDE protector, as the simulator sees it"
show_protector --expect customer-key

step "terraform plan (expecting no changes)"
plan_status=0
tf plan -detailed-exitcode -input=false -no-color || plan_status=$?
[[ $plan_status -eq 0 ]] || fail "plan after apply exited $plan_status; expected 0 (no changes)"

step "terraform destroy"
tf destroy -auto-approve -input=false -no-color

step "protector after destroy"
show_protector --expect service-managed

step "demo finished"
