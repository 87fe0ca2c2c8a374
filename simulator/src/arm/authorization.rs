//! Role assignments (in progress).
use super::{ArmContext, ArmError, ArmResult};
use crate::state::World;

/// Routes a role assignment request.
pub fn handle(
    _world: &mut World,
    _context: &ArmContext<'_>,
    _scope: &str,
    _name: Option<&str>,
) -> ArmResult {
    Err(ArmError::new(
        axum::http::StatusCode::NOT_FOUND,
        "InvalidResourceType",
        "The resource type is not served yet.",
    ))
}
