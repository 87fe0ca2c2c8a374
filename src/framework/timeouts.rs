//! The `timeouts` block every resource has, and the deadlines it yields.
//!
//! Users write durations the way Terraform and Go do (`"30s"`, `"10m"`, `"1h30m"`). Defaults are
//! data beside each resource's schema; this module only parses and picks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::diag::{AttributePath, Diagnostic, Diagnostics};
use super::schema::{Attribute, Block, NestedBlock, Nesting, Validator};
use super::value::Value;

/// Which operation a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Creating the object.
    Create,
    /// Reading (refreshing) it.
    Read,
    /// Updating it in place.
    Update,
    /// Deleting it.
    Delete,
}

impl Operation {
    /// The attribute name in the `timeouts` block.
    pub fn attribute(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Read => "read",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// Default durations for one resource.
#[derive(Clone, Copy, Debug)]
pub struct TimeoutDefaults {
    /// For create.
    pub create: Duration,
    /// For read.
    pub read: Duration,
    /// For update.
    pub update: Duration,
    /// For delete.
    pub delete: Duration,
}

impl TimeoutDefaults {
    fn get(&self, operation: Operation) -> Duration {
        match operation {
            Operation::Create => self.create,
            Operation::Read => self.read,
            Operation::Update => self.update,
            Operation::Delete => self.delete,
        }
    }
}

/// The `timeouts` block as a resource model field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Create duration.
    pub create: Option<String>,
    /// Read duration.
    pub read: Option<String>,
    /// Update duration.
    pub update: Option<String>,
    /// Delete duration.
    pub delete: Option<String>,
}

/// The `timeouts` nested block, documenting the defaults.
pub fn timeouts_block(defaults: TimeoutDefaults) -> NestedBlock {
    let operations = [Operation::Create, Operation::Read, Operation::Update, Operation::Delete];
    let attributes = operations
        .iter()
        .map(|operation| {
            Attribute::string(operation.attribute())
                .optional()
                .validate(Validator::String(check_duration))
                .describe(format!(
                    "How long to wait for {} before giving up, such as `30m` (default `{}`).",
                    operation.attribute(),
                    format_duration(defaults.get(*operation))
                ))
        })
        .collect();
    NestedBlock {
        name: "timeouts",
        nesting: Nesting::Single,
        block: Block::new("How long each operation may take.", attributes),
    }
}

/// How long `operation` may take, from a resource value's `timeouts` block or the default.
pub fn duration_for(
    value: &Value,
    operation: Operation,
    defaults: TimeoutDefaults,
) -> Result<Duration, Diagnostics> {
    let configured = value.attribute("timeouts").attribute(operation.attribute());
    match configured.as_str() {
        None => Ok(defaults.get(operation)),
        Some(text) => parse_duration(text).map_err(|problem| {
            let path = AttributePath::root("timeouts").attribute(operation.attribute());
            Diagnostic::error("Invalid timeout", format!("{problem}.")).at(path).into()
        }),
    }
}

fn check_duration(text: &str) -> Result<(), String> {
    parse_duration(text).map(|_| ())
}

/// Parses a Go-style duration: one or more `<number><unit>` with units h, m, s, ms.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid =
        || format!("{text:?} is not a duration; write it like \"30s\", \"10m\" or \"1h30m\"");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(invalid)?;
        let amount: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        let after = &rest[digits..];
        let unit_length = after.find(|c: char| c.is_ascii_digit()).unwrap_or(after.len());
        let seconds_per_unit = match &after[..unit_length] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(invalid()),
        };
        let part = Duration::try_from_secs_f64(amount * seconds_per_unit).map_err(|_| invalid())?;
        total = total.checked_add(part).ok_or_else(invalid)?;
        rest = &after[unit_length..];
    }
    if total > LONGEST_TIMEOUT {
        return Err(format!("{text:?} is longer than the longest timeout allowed, 7 days"));
    }
    Ok(total)
}

/// No Azure operation runs for a week; a longer value is a typo, and would overflow deadlines.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Formats a duration the way users write them.
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match (seconds / 3600, seconds % 3600 / 60, seconds % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, 0) => format!("{h}h{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("seconds", "45s", Duration::from_secs(45)),
            ("minutes", "10m", Duration::from_secs(600)),
            ("compound", "1h30m", Duration::from_secs(5400)),
            ("fraction", "1.5h", Duration::from_secs(5400)),
            ("milliseconds", "250ms", Duration::from_millis(250)),
        ];
        for (name, text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{name}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in ["", "10", "ten minutes", "5d", "m5", "99999999999999999999999h"] {
            let problem = parse_duration(text).unwrap_err();
            assert!(problem.contains("is not a duration"), "{text}: {problem}");
        }
        let problem = parse_duration("4000000000000000h").unwrap_err();
        assert!(problem.contains("longest timeout"), "{problem}");
    }

    #[test]
    fn formats_defaults_for_documentation() {
        assert_eq!(format_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
    }
}
