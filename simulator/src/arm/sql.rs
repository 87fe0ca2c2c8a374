//! Provider module (in progress).
use super::{ArmContext, ArmError, ArmResult};
use crate::state::World;

/// Routes a provider request.
pub fn handle(
    _world: &mut World,
    _context: &ArmContext<'_>,
    _group: &str,
    _rest: &[&str],
) -> ArmResult {
    Err(ArmError::new(
        axum::http::StatusCode::NOT_FOUND,
        "InvalidResourceType",
        "The resource type is not served yet.",
    ))
}
