//! The tfplugin6 wire types and the `Provider` service glue, generated from
//! `proto/tfplugin6.proto` by `build.rs`.
//!
//! This module only re-exposes generated code; conversions and behaviour live elsewhere in
//! `server`, and nothing here may be edited by hand.

// Generated code documents itself with the proto comments where there are any; prost and tonic
// emit undocumented items and a few lints (such as enum variant naming) it cannot avoid.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("tfplugin6");
