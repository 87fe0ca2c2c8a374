//! Long-running operations (in progress).
