//! Placeholder while this layer is being written.

/// Generated tfplugin6 wire types and service glue.
pub mod proto;
