//! The tfplugin6 `Provider` service: decode each request, call the framework, encode the answer.
//!
//! Nothing here talks to Azure and no resource logic lives here; a request for something the
//! provider does not offer (an unknown type, functions, ephemeral resources) is answered with a
//! diagnostic, never a crash. `StopProvider` cancels in-flight work through the token every
//! resource call receives; it does not stop the server (that is the controller's `Shutdown`).

/// Generated tfplugin6 wire types and service glue.
pub mod proto;

mod convert;
mod service;

pub use service::{ProviderService, routes};
