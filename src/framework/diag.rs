//! Diagnostics: what the user reads when something is wrong, pointing at the attribute at fault.
//!
//! A diagnostic has a short summary, a detail written as full sentences that say what to do, and,
//! where one attribute is the cause, its path, so Terraform underlines the right line of the
//! configuration. Nothing here knows about gRPC; `server` converts these to the wire form.

use std::fmt;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The operation failed.
    Error,
    /// The operation went on, but the user should know.
    Warning,
}

/// One step of an attribute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// An attribute or nested block by name.
    Attribute(String),
    /// A map element by key.
    Key(String),
    /// A list element by position.
    Index(i64),
}

/// Where in a configuration or state a diagnostic points, such as `timeouts.create`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributePath {
    /// The steps from the root object.
    pub steps: Vec<PathStep>,
}

impl AttributePath {
    /// The path to a top-level attribute.
    pub fn root(name: &str) -> AttributePath {
        AttributePath { steps: vec![PathStep::Attribute(name.to_string())] }
    }

    /// This path extended by an attribute.
    pub fn attribute(mut self, name: &str) -> AttributePath {
        self.steps.push(PathStep::Attribute(name.to_string()));
        self
    }

    /// This path extended by a map key.
    pub fn key(mut self, key: &str) -> AttributePath {
        self.steps.push(PathStep::Key(key.to_string()));
        self
    }

    /// This path extended by a list index.
    pub fn index(mut self, index: i64) -> AttributePath {
        self.steps.push(PathStep::Index(index));
        self
    }
}

impl fmt::Display for AttributePath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, step) in self.steps.iter().enumerate() {
            match step {
                PathStep::Attribute(name) if position == 0 => formatter.write_str(name)?,
                PathStep::Attribute(name) => write!(formatter, ".{name}")?,
                PathStep::Key(key) => write!(formatter, "[{key:?}]")?,
                PathStep::Index(index) => write!(formatter, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One message for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One short line.
    pub summary: String,
    /// Full sentences: what happened, why, and what to do.
    pub detail: String,
    /// The attribute at fault, when there is one.
    pub attribute: Option<AttributePath>,
}

impl Diagnostic {
    /// An error not tied to one attribute.
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            attribute: None,
        }
    }

    /// A warning not tied to one attribute.
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(summary, detail) }
    }

    /// This diagnostic, pointing at `path`.
    pub fn at(mut self, path: AttributePath) -> Diagnostic {
        self.attribute = Some(path);
        self
    }

    /// This diagnostic, pointing at the top-level attribute `name`.
    pub fn at_attribute(self, name: &str) -> Diagnostic {
        self.at(AttributePath::root(name))
    }
}

/// The diagnostics an operation produced, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// No diagnostics.
    pub fn new() -> Diagnostics {
        Diagnostics(Vec::new())
    }

    /// Adds one.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Adds all of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Whether any is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|diagnostic| diagnostic.severity == Severity::Error)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates in order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Diagnostics {
        Diagnostics(vec![diagnostic])
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_terraform_expressions() {
        let cases = [
            ("attribute", AttributePath::root("key_id"), "key_id"),
            ("nested", AttributePath::root("timeouts").attribute("create"), "timeouts.create"),
            ("map key", AttributePath::root("tags").key("env"), "tags[\"env\"]"),
            ("list index", AttributePath::root("audiences").index(0), "audiences[0]"),
        ];
        for (name, path, expected) in cases {
            assert_eq!(path.to_string(), expected, "{name}");
        }
    }

    #[test]
    fn warnings_are_not_errors() {
        let mut diagnostics = Diagnostics::new();
        diagnostics.push(Diagnostic::warning("drift", "the key changed"));
        assert!(!diagnostics.has_errors());
        diagnostics.push(Diagnostic::error("bad", "fix it").at_attribute("name"));
        assert!(diagnostics.has_errors());
    }
}
