#!/usr/bin/env python3
"""Prints each SQL server's TDE protector from the simulator's `GET /admin/state` JSON (stdin).

For a customer-managed key it also names the vault and tenant holding the key, so the demo shows
the cross-tenant link. With --expect, exits 1 unless every server's protector is of that kind:
`customer-key` (a Key Vault key in another tenant) or `service-managed`.
"""

import argparse
import json
import sys


def tenant_names(state):
    return {t.get("id"): t.get("display_name", t.get("id")) for t in state.get("tenants", [])}


def subscription_tenants(state):
    return {s.get("id"): s.get("tenant_id") for s in state.get("subscriptions", [])}


def subscription_of(resource_id):
    parts = (resource_id or "").split("/")
    lowered = [part.lower() for part in parts]
    if "subscriptions" in lowered:
        index = lowered.index("subscriptions")
        if index + 1 < len(parts):
            return parts[index + 1]
    return None


def vault_for_key(state, kid):
    for vault in state.get("vaults", []):
        uri = vault.get("vault_uri") or ""
        if uri and kid.lower().startswith(uri.lower()):
            return vault
    return None


def describe_server(state, server):
    """Returns (lines, kind) for one server; kind is customer-key, same-tenant-key or service-managed."""
    names = tenant_names(state)
    server_tenant = subscription_tenants(state).get(subscription_of(server.get("id")))
    protector = server.get("protector") or {}
    lines = [f"server {server.get('name')} (tenant {names.get(server_tenant, server_tenant)})"]

    kid = protector.get("kid")
    if not kid:
        lines.append(f"  TDE protector: {protector.get('server_key_type', 'ServiceManaged')}")
        return lines, "service-managed"

    key = protector.get("key") or {}
    enabled = "enabled" if key.get("enabled") else "NOT enabled"
    lines.append(f"  TDE protector: {protector.get('server_key_type')} key {kid} ({enabled})")
    lines.append(f"  server key name: {protector.get('server_key_name')}")
    vault = vault_for_key(state, kid)
    kind = "same-tenant-key"
    if vault is not None:
        vault_tenant = vault.get("tenant_id")
        cross = vault_tenant != server_tenant
        kind = "customer-key" if cross else kind
        relation = "another tenant" if cross else "the server's own tenant"
        lines.append(
            f"  key held in vault {vault.get('name')} of tenant "
            f"{names.get(vault_tenant, vault_tenant)} ({relation})"
        )
    lines.append(f"  primary identity: {server.get('primary_user_assigned_identity_id')}")
    lines.append(f"  federated client id: {server.get('federated_client_id')}")
    if server.get("key_accessible") is False:
        lines.append(f"  key inaccessible: {server.get('key_problem')}")
    return lines, kind


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--expect", choices=["customer-key", "service-managed"])
    arguments = parser.parse_args()

    state = json.load(sys.stdin)
    servers = state.get("servers", [])
    if not servers:
        print("no SQL servers in the simulator")
        return 1 if arguments.expect else 0

    unexpected = []
    for server in servers:
        lines, kind = describe_server(state, server)
        print("\n".join(lines))
        if arguments.expect and kind != arguments.expect:
            unexpected.append(f"{server.get('name')} is {kind}, expected {arguments.expect}")
    for message in unexpected:
        print(f"show-protector: {message}", file=sys.stderr)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
