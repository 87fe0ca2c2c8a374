//! terraform-provider-azurecmk: Azure SQL transparent data encryption with a customer-managed key
//! held in another Entra tenant, exposed as Terraform resources.
//!
//! The layers, outermost first: `plugin` (go-plugin handshake and transport), `server` (the
//! tfplugin6 gRPC service), `framework` (schema, values, diagnostics, plan rules), `provider`,
//! `resources` and `data_sources` (what users see), and `azure` (our own Azure client).

pub mod azure;
pub mod data_sources;
pub mod framework;
pub mod plugin;
pub mod provider;
pub mod resources;
pub mod server;
