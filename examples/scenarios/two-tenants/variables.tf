variable "isv_tenant_id" {
  description = "The ISV's Entra tenant, where the SQL server runs."
  type        = string
}

variable "isv_subscription_id" {
  description = "The ISV's subscription holding the SQL server."
  type        = string
}

variable "isv_client_id" {
  description = "The client id Terraform signs in as in the ISV's tenant."
  type        = string
}

variable "isv_client_secret" {
  description = "The client secret Terraform signs in with in the ISV's tenant."
  type        = string
  sensitive   = true
}

variable "customer_tenant_id" {
  description = "The customer's Entra tenant, where the key lives."
  type        = string
}

variable "customer_subscription_id" {
  description = "The customer's subscription holding the key vault."
  type        = string
}

variable "customer_client_id" {
  description = "The client id Terraform signs in as in the customer's tenant."
  type        = string
}

variable "customer_client_secret" {
  description = "The client secret Terraform signs in with in the customer's tenant."
  type        = string
  sensitive   = true
}

variable "location" {
  description = "The region of the ISV's identity."
  type        = string
  default     = "westeurope"
}

variable "isv_resource_group_name" {
  description = "The ISV's resource group holding the SQL server and its identity."
  type        = string
  default     = "rg-isv"
}

variable "sql_server_name" {
  description = "The ISV's existing SQL logical server."
  type        = string
  default     = "isv-sql-01"
}

variable "customer_resource_group_name" {
  description = "The customer's resource group holding the key vault."
  type        = string
  default     = "rg-customer"
}

variable "key_vault_name" {
  description = "The customer's key vault; it must have soft delete and purge protection."
  type        = string
  default     = "contoso-cmk-kv"
}
