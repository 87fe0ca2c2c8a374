//! Generates the gRPC types and service glue for `proto/` at build time.
//!
//! Parsing is done by `protox` in pure Rust, so building never needs a system `protoc`. This script
//! only translates the protos; it must never fetch anything or read the environment beyond what
//! cargo provides.

use std::error::Error;

/// The protos compiled into the crate, relative to the `proto` include directory.
const PROTOS: [&str; 2] = ["tfplugin6.proto", "plugin.proto"];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");

    let descriptors = protox::compile(PROTOS, ["proto"])?;

    // Clients are generated too: the integration tests drive the binary the way Terraform does.
    // Default stubs make every RPC the service does not implement answer UNIMPLEMENTED, which is
    // what Terraform expects from a provider that lacks an optional, newer RPC.
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    Ok(())
}
