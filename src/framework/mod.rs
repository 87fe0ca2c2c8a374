//! The provider framework: everything a Terraform provider needs that is not about Azure and not
//! about gRPC.
//!
//! It owns the schema model, values and their encodings, diagnostics with attribute paths, the
//! shared plan rules, the `timeouts` block, Terraform-native logging and the traits resources
//! implement. It must never import an Azure type (that is `azure`'s) nor a prost type (that is
//! `server`'s), so that both sides stay replaceable and testable alone.

pub mod codec;
pub mod diag;
pub mod logging;
pub mod model;
pub mod plan;
pub mod resource;
pub mod schema;
pub mod timeouts;
pub mod value;

pub use diag::{AttributePath, Diagnostic, Diagnostics, Severity};
pub use plan::{Change, Plan};
pub use resource::{ApplyResult, Context, DataSource, Provider, ReadResult, Resource};
pub use schema::{Attribute, Block, Mode, NestedBlock, Nesting, Schema, Validator};
pub use value::{Number, Type, Value};
