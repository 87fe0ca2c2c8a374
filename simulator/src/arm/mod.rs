//! Azure Resource Manager.
use crate::Shared;
use axum::extract::{Request, State};
use axum::response::Response;
use std::sync::Arc;

/// Serves one ARM request.
pub async fn handle(State(_shared): State<Arc<Shared>>, _request: Request) -> Response {
    crate::http::plain(axum::http::StatusCode::NOT_FOUND, "not yet")
}
