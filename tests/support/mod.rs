//! Helpers shared by the integration tests; each test crate includes them with `mod support;`.

pub mod terraform;
