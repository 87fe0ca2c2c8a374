//! Microsoft.Sql long-running operations: the 202 answer and its two polling URLs.
//!
//! A 202 carries `{"operation","startTime"}`, `Azure-AsyncOperation` (the status resource),
//! `Location` (the result) and `Retry-After: 0`. The status URL answers `InProgress` for the
//! configured number of polls, then `Succeeded` or `Failed` with the Azure error; the Location
//! URL answers 202 while running, then the final resource. Polls of either URL count.

use axum::http::StatusCode;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ArmContext, ArmError, ArmReply, ArmResult, group_id};
use crate::http::format_rfc3339;
use crate::state::{Operation, OperationOutcome, World};

/// Which status URLs an operation uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `servers`.
    Server,
    /// `servers/keys`.
    ServerKey,
    /// `servers/encryptionProtector`.
    EncryptionProtector,
}

impl Family {
    fn async_segment(self) -> &'static str {
        match self {
            Self::Server => "serverAzureAsyncOperation",
            Self::ServerKey => "serverKeyAzureAsyncOperation",
            Self::EncryptionProtector => "encryptionProtectorAzureAsyncOperation",
        }
    }

    fn result_segment(self) -> &'static str {
        match self {
            Self::Server => "serverOperationResults",
            Self::ServerKey => "serverKeyOperationResults",
            Self::EncryptionProtector => "encryptionProtectorOperationResults",
        }
    }
}

/// Whether a `locations/{loc}/{segment}` segment is a status (true) or result (false) URL.
pub fn classify_segment(segment: &str) -> Option<bool> {
    [Family::Server, Family::ServerKey, Family::EncryptionProtector].iter().find_map(|family| {
        if segment.eq_ignore_ascii_case(family.async_segment()) {
            Some(true)
        } else if segment.eq_ignore_ascii_case(family.result_segment()) {
            Some(false)
        } else {
            None
        }
    })
}

/// ARM's location name: lower case without spaces (`West Europe` → `westeurope`).
fn location_name(location: &str) -> String {
    location.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase()
}

fn operation_urls(
    world: &World,
    context: &ArmContext<'_>,
    group: &str,
    location: &str,
    family: Family,
    id: Uuid,
) -> (String, String) {
    let base = format!(
        "{}{}/providers/Microsoft.Sql/locations/{}",
        context.base_url(),
        group_id(world, context.subscription, group),
        location_name(location)
    );
    let version = &context.api_version;
    (
        format!("{base}/{}/{id}?api-version={version}", family.async_segment()),
        format!("{base}/{}/{id}?api-version={version}", family.result_segment()),
    )
}

/// Starts an operation whose outcome is already decided and answers 202.
pub fn accept(
    world: &mut World,
    context: &ArmContext<'_>,
    group: &str,
    location: &str,
    family: Family,
    operation_name: &str,
    outcome: OperationOutcome,
) -> ArmReply {
    let id = Uuid::new_v4();
    let started = OffsetDateTime::now_utc();
    let polls_left = world.settings.polls_before_done;
    world.operations.insert(id, Operation { id, polls_left, started, outcome });
    let (status_url, result_url) = operation_urls(world, context, group, location, family, id);
    let body = json!({"operation": operation_name, "startTime": format_rfc3339(started)});
    ArmReply::Json(
        StatusCode::ACCEPTED,
        body,
        vec![
            ("azure-asyncoperation", status_url),
            ("location", result_url),
            ("retry-after", "0".to_string()),
        ],
    )
}

fn find<'w>(world: &'w mut World, id: &str) -> Result<&'w mut Operation, ArmError> {
    Uuid::parse_str(id).ok().and_then(|id| world.operations.get_mut(&id)).ok_or_else(|| {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "OperationIdNotFound",
            format!("The operation '{id}' was not found."),
        )
    })
}

/// Takes one poll; true while the operation still runs.
fn still_running(operation: &mut Operation) -> bool {
    if operation.polls_left == 0 {
        return false;
    }
    operation.polls_left -= 1;
    true
}

/// `GET …/{family}AzureAsyncOperation/{id}`: always 200 with the status resource.
pub fn status(world: &mut World, id: &str) -> ArmResult {
    let operation = find(world, id)?;
    let mut body = json!({"name": operation.id, "startTime": format_rfc3339(operation.started)});
    if still_running(operation) {
        body["status"] = json!("InProgress");
        // Microsoft.Sql repeats its polling hint on every status answer while running.
        let hint = vec![("retry-after", "0".to_string())];
        return Ok(ArmReply::Json(StatusCode::OK, body, hint));
    }
    body["endTime"] = json!(format_rfc3339(OffsetDateTime::now_utc()));
    match &operation.outcome {
        OperationOutcome::Succeeded(_) => body["status"] = json!("Succeeded"),
        OperationOutcome::Failed { code, message, .. } => {
            body["status"] = json!("Failed");
            body["error"] = json!({"code": code, "message": message});
        }
    }
    Ok(ArmReply::ok(body))
}

/// `GET …/{family}OperationResults/{id}`: 202 while running, then the final answer.
pub fn result(world: &mut World, context: &ArmContext<'_>, id: &str) -> ArmResult {
    let operation = find(world, id)?;
    if still_running(operation) {
        let location = format!(
            "https://{}{}?api-version={}",
            context.request.host, context.request.path, context.api_version
        );
        return Ok(ArmReply::Json(
            StatusCode::ACCEPTED,
            json!({}),
            vec![("location", location), ("retry-after", "0".to_string())],
        ));
    }
    match &operation.outcome {
        OperationOutcome::Succeeded(serde_json::Value::Null) => {
            Ok(ArmReply::Empty(StatusCode::NO_CONTENT))
        }
        OperationOutcome::Succeeded(body) => Ok(ArmReply::ok(body.clone())),
        OperationOutcome::Failed { status, code, message } => Err(ArmError::new(
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message.clone(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_and_segment_cases() {
        assert_eq!(location_name("West Europe"), "westeurope");
        let cases = [
            ("server status", "serverAzureAsyncOperation", Some(true)),
            ("key result", "serverkeyoperationresults", Some(false)),
            ("protector status", "encryptionProtectorAzureAsyncOperation", Some(true)),
            ("other", "databaseOperationResults", None),
        ];
        for (name, segment, expected) in cases {
            assert_eq!(classify_segment(segment), expected, "{name}");
        }
    }

    #[test]
    fn polls_count_down_then_finish() {
        let mut operation = Operation {
            id: Uuid::nil(),
            polls_left: 2,
            started: OffsetDateTime::now_utc(),
            outcome: OperationOutcome::Succeeded(json!({})),
        };
        let polls: Vec<bool> = (0..3).map(|_| still_running(&mut operation)).collect();
        assert_eq!(polls, vec![true, true, false]);
    }
}
