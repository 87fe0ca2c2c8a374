//! A string that must never be printed: client secrets, OIDC assertions, access tokens.
//!
//! This module owns only the wrapper. It must never offer a way to format the inner value; code
//! that needs the value calls [`Secret::expose`] at the single place where it is sent.

use std::fmt;

/// A sensitive string whose `Debug` and `Display` print `<redacted>`.
///
/// Equality compares the inner values so configuration can be compared without exposing them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a sensitive value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// Returns the inner value; call it only where the value leaves the process.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the inner value is empty or only whitespace.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    const FAKE_SECRET: &str = "fake-client-secret-value";

    #[test]
    fn formatting_never_shows_the_value() {
        let secret = Secret::new(FAKE_SECRET);
        let cases = [
            ("debug", format!("{secret:?}")),
            ("display", format!("{secret}")),
            ("pretty debug", format!("{secret:#?}")),
            ("inside an option", format!("{:?}", Some(secret.clone()))),
        ];
        for (name, rendered) in cases {
            assert!(!rendered.contains(FAKE_SECRET), "{name}: {rendered}");
            assert!(rendered.contains("<redacted>"), "{name}: {rendered}");
        }
    }

    #[test]
    fn expose_returns_the_value() {
        assert_eq!(Secret::new(FAKE_SECRET).expose(), FAKE_SECRET);
    }

    #[test]
    fn blank_detection() {
        let cases = [("empty", "", true), ("spaces", "  \n", true), ("value", "x", false)];
        for (name, value, expected) in cases {
            assert_eq!(Secret::new(value).is_blank(), expected, "{name}");
        }
    }
}
