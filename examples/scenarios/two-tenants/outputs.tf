output "server_key_name" {
  description = "The key as registered on the SQL server."
  value       = azurecmk_sql_tde_cross_tenant_protector.sql.server_key_name
}

output "key_id" {
  description = "The customer's key protecting the server."
  value       = azurecmk_key_vault_key.tde.id
}

output "federated_client_id" {
  description = "The multi-tenant application the server acts as in the customer's tenant."
  value       = azurecmk_multi_tenant_application.cmk.client_id
}
