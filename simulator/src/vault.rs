//! Key Vault data plane.
use crate::Shared;
use axum::extract::{Request, State};
use axum::response::Response;
use std::sync::Arc;

/// Serves one Key Vault request.
pub async fn handle(State(_shared): State<Arc<Shared>>, _request: Request) -> Response {
    crate::http::plain(axum::http::StatusCode::NOT_FOUND, "not yet")
}

/// A parsed key identifier.
pub struct KeyIdentifier {
    pub vault: String,
    pub name: String,
    pub version: String,
}
impl KeyIdentifier {
    /// Parses.
    pub fn parse(_kid: &str) -> Option<Self> {
        None
    }
}
