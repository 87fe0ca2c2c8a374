//! A local Azure.
