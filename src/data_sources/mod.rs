//! Placeholder while this layer is being written.
