//! go-plugin's side services (`GRPCController`, `GRPCStdio`, `GRPCBroker`) and their messages,
//! generated from `proto/plugin.proto` by `build.rs`.
//!
//! This module only re-exposes generated code; the behaviour of the services lives in
//! `plugin::services`, and nothing here may be edited by hand.

// Generated code: prost and tonic emit undocumented items and a few lints they cannot avoid.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("plugin");
