# Both halves of cross-tenant customer-managed-key TDE in one configuration: the ISV's tenant runs
# the SQL server, the customer's tenant holds the key. One aliased provider block per tenant.

terraform {
  required_version = ">= 1.0"
  required_providers {
    azurecmk = {
      source = "azurecmk/azurecmk"
    }
  }
}

provider "azurecmk" {
  alias           = "isv"
  tenant_id       = var.isv_tenant_id
  subscription_id = var.isv_subscription_id
  client_id       = var.isv_client_id
  client_secret   = var.isv_client_secret
}

provider "azurecmk" {
  alias           = "customer"
  tenant_id       = var.customer_tenant_id
  subscription_id = var.customer_subscription_id
  client_id       = var.customer_client_id
  client_secret   = var.customer_client_secret
}

# ISV tenant, steps 1-3: the identity the SQL server runs as, a multi-tenant application, and the
# identity trusted as a federated credential of that application.

resource "azurecmk_user_assigned_identity" "sql" {
  provider            = azurecmk.isv
  name                = "uami-sql-cmk"
  resource_group_name = var.isv_resource_group_name
  location            = var.location
}

resource "azurecmk_multi_tenant_application" "cmk" {
  provider     = azurecmk.isv
  display_name = "contoso-sql-cmk"
}

resource "azurecmk_federated_app_credential" "sql" {
  provider              = azurecmk.isv
  application_object_id = azurecmk_multi_tenant_application.cmk.object_id
  managed_identity_id   = azurecmk_user_assigned_identity.sql.id
  name                  = "sql-server-uami"
  description           = "Lets the SQL server's identity act as the application"
}

# Customer tenant, steps 4-6: install the ISV's application, create the key, grant the
# application's service principal get, wrapKey and unwrapKey on it.

resource "azurecmk_application_installation" "cmk" {
  provider  = azurecmk.customer
  client_id = azurecmk_multi_tenant_application.cmk.client_id
}

locals {
  key_vault_id  = "/subscriptions/${var.customer_subscription_id}/resourceGroups/${var.customer_resource_group_name}/providers/Microsoft.KeyVault/vaults/${var.key_vault_name}"
  sql_server_id = "/subscriptions/${var.isv_subscription_id}/resourceGroups/${var.isv_resource_group_name}/providers/Microsoft.Sql/servers/${var.sql_server_name}"
}

resource "azurecmk_key_vault_key" "tde" {
  provider     = azurecmk.customer
  key_vault_id = local.key_vault_id
  name         = "contoso-tde"
  key_type     = "RSA"
  key_size     = 3072
}

resource "azurecmk_cross_tenant_key_grant" "sql" {
  provider                    = azurecmk.customer
  service_principal_object_id = azurecmk_application_installation.cmk.object_id
  key_vault_id                = local.key_vault_id
  key_name                    = azurecmk_key_vault_key.tde.name
}

# ISV tenant, steps 7-9: the server runs as the identity, acts as the application, and protects
# its data with the customer's key.

resource "azurecmk_sql_tde_cross_tenant_protector" "sql" {
  provider                  = azurecmk.isv
  server_id                 = local.sql_server_id
  user_assigned_identity_id = azurecmk_user_assigned_identity.sql.id
  federated_client_id       = azurecmk_multi_tenant_application.cmk.client_id
  key_id                    = azurecmk_key_vault_key.tde.id

  # The key can only protect the server once the grant and the federated credential exist.
  depends_on = [
    azurecmk_cross_tenant_key_grant.sql,
    azurecmk_federated_app_credential.sql,
  ]
}
