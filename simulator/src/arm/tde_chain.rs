//! The cross-tenant key chain check (in progress).
