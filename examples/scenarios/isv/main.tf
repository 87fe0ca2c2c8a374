# The ISV's half: the identity the SQL server runs as, the multi-tenant application it acts as,
# and, once the customer has granted access, the server protected by the customer's key.
# Apply once without customer_key_id to get the application's client id for the customer.

terraform {
  required_version = ">= 1.0"
  required_providers {
    azurecmk = {
      source = "azurecmk/azurecmk"
    }
  }
}

provider "azurecmk" {}

variable "sql_server_id" {
  description = "The SQL logical server to protect."
  type        = string
}

variable "resource_group_name" {
  description = "Where to create the server's identity."
  type        = string
}

variable "location" {
  description = "The identity's region."
  type        = string
}

variable "customer_key_id" {
  description = "The key identifier the customer handed back; leave empty until they have."
  type        = string
  default     = ""
}

resource "azurecmk_user_assigned_identity" "sql" {
  name                = "uami-sql-cmk"
  resource_group_name = var.resource_group_name
  location            = var.location
}

resource "azurecmk_multi_tenant_application" "cmk" {
  display_name = "sql-cmk"
}

resource "azurecmk_federated_app_credential" "sql" {
  application_object_id = azurecmk_multi_tenant_application.cmk.object_id
  managed_identity_id   = azurecmk_user_assigned_identity.sql.id
  name                  = "sql-server-uami"
}

resource "azurecmk_sql_tde_cross_tenant_protector" "sql" {
  count = var.customer_key_id == "" ? 0 : 1

  server_id                 = var.sql_server_id
  user_assigned_identity_id = azurecmk_user_assigned_identity.sql.id
  federated_client_id       = azurecmk_multi_tenant_application.cmk.client_id
  key_id                    = var.customer_key_id
  depends_on                = [azurecmk_federated_app_credential.sql]
}

output "application_client_id" {
  description = "Give this to the customer: the application to install in their tenant."
  value       = azurecmk_multi_tenant_application.cmk.client_id
}
