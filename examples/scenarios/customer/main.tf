# The customer's half: install the ISV's multi-tenant application, create the key in a
# purge-protected vault, and let the application use it. Hand `key_id` back to the ISV.

terraform {
  required_version = ">= 1.0"
  required_providers {
    azurecmk = {
      source = "azurecmk/azurecmk"
    }
  }
}

# Credentials come from ARM_TENANT_ID, ARM_SUBSCRIPTION_ID, ARM_CLIENT_ID and ARM_CLIENT_SECRET
# (or ARM_USE_OIDC in CI), as with the azurerm provider.
provider "azurecmk" {}

variable "isv_application_client_id" {
  description = "The client id of the ISV's multi-tenant application, as the ISV gave it to you."
  type        = string
}

variable "key_vault_id" {
  description = "Your key vault; it must have soft delete and purge protection."
  type        = string
}

resource "azurecmk_application_installation" "isv" {
  client_id = var.isv_application_client_id
}

resource "azurecmk_key_vault_key" "tde" {
  key_vault_id = var.key_vault_id
  name         = "isv-sql-tde"
  key_type     = "RSA-HSM"
  key_size     = 3072
}

resource "azurecmk_cross_tenant_key_grant" "isv" {
  service_principal_object_id = azurecmk_application_installation.isv.object_id
  key_vault_id                = var.key_vault_id
  key_name                    = azurecmk_key_vault_key.tde.name
}

output "key_id" {
  description = "Give this to the ISV: the key that will protect your data."
  value       = azurecmk_key_vault_key.tde.id
  depends_on  = [azurecmk_cross_tenant_key_grant.isv]
}
