//! Injected faults: latency, error statuses with `Retry-After`, and dropped connections.
//!
//! Rules come from `POST /admin/faults` and are matched against every proxied request before
//! it reaches an API. This module decides what happens to a request; it never touches the
//! world state.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a matching rule does to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Delay the request by `latency_ms`, then serve it normally.
    Latency,
    /// Answer with `status` (and `Retry-After` when set) instead of serving it.
    Status,
    /// Close the connection without answering.
    Drop,
}

/// One fault rule, as posted to the admin API.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultRule {
    /// Host to match, or `*`.
    #[serde(default = "any")]
    pub host: String,
    /// Method to match, or `*`.
    #[serde(default = "any")]
    pub method: String,
    /// Substring the path must contain (empty matches everything).
    #[serde(default)]
    pub path_contains: String,
    /// What to do.
    pub kind: FaultKind,
    /// Status for `status` faults.
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` seconds for `status` faults.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Delay for `latency` faults.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// How many more requests the rule applies to; `None` means forever.
    #[serde(default)]
    pub times: Option<u32>,
}

fn any() -> String {
    "*".to_string()
}

impl FaultRule {
    fn matches(&self, host: &str, method: &str, path: &str) -> bool {
        let host_matches = self.host == "*" || self.host.eq_ignore_ascii_case(host);
        let method_matches = self.method == "*" || self.method.eq_ignore_ascii_case(method);
        let path_matches =
            path.to_ascii_lowercase().contains(&self.path_contains.to_ascii_lowercase());
        host_matches && method_matches && path_matches && self.times != Some(0)
    }
}

/// The decision for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// Total delay before anything else happens.
    pub delay: Duration,
    /// Answer with this status (and optional `Retry-After`) instead of serving.
    pub status: Option<(u16, Option<u64>)>,
    /// Drop the connection instead of serving.
    pub drop: bool,
}

/// The active fault rules.
#[derive(Debug, Default)]
pub struct FaultSet {
    rules: Vec<FaultRule>,
}

impl FaultSet {
    /// Adds a rule.
    pub fn add(&mut self, rule: FaultRule) {
        self.rules.push(rule);
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The active rules.
    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    /// Decides what happens to a request, spending one use of every rule that applies.
    ///
    /// Latency adds up over all matching rules; the first matching status or drop rule wins.
    pub fn plan(&mut self, host: &str, method: &str, path: &str) -> FaultPlan {
        let mut plan = FaultPlan::default();
        for rule in self.rules.iter_mut().filter(|rule| rule.matches(host, method, path)) {
            match rule.kind {
                FaultKind::Latency => {
                    plan.delay += Duration::from_millis(rule.latency_ms.unwrap_or(0));
                }
                FaultKind::Status if plan.status.is_none() && !plan.drop => {
                    plan.status = Some((rule.status.unwrap_or(503), rule.retry_after));
                }
                FaultKind::Drop if plan.status.is_none() && !plan.drop => plan.drop = true,
                FaultKind::Status | FaultKind::Drop => continue,
            }
            if let Some(times) = rule.times.as_mut() {
                *times -= 1;
            }
        }
        self.rules.retain(|rule| rule.times != Some(0));
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: FaultKind, times: Option<u32>) -> FaultRule {
        FaultRule {
            host: "management.azure.com".into(),
            method: "PUT".into(),
            path_contains: "/servers/".into(),
            kind,
            status: Some(429),
            retry_after: Some(1),
            latency_ms: Some(50),
            times,
        }
    }

    #[test]
    fn plan_cases() {
        let path = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/x";
        let cases = [
            (
                "status",
                rule(FaultKind::Status, None),
                "management.azure.com",
                "PUT",
                FaultPlan { status: Some((429, Some(1))), ..FaultPlan::default() },
            ),
            (
                "latency",
                rule(FaultKind::Latency, None),
                "management.azure.com",
                "put",
                FaultPlan { delay: Duration::from_millis(50), ..FaultPlan::default() },
            ),
            (
                "drop",
                rule(FaultKind::Drop, None),
                "MANAGEMENT.azure.com",
                "PUT",
                FaultPlan { drop: true, ..FaultPlan::default() },
            ),
            (
                "other method",
                rule(FaultKind::Drop, None),
                "management.azure.com",
                "GET",
                FaultPlan::default(),
            ),
            (
                "other host",
                rule(FaultKind::Drop, None),
                "graph.microsoft.com",
                "PUT",
                FaultPlan::default(),
            ),
        ];
        for (name, rule, host, method, expected) in cases {
            let mut faults = FaultSet::default();
            faults.add(rule);
            assert_eq!(faults.plan(host, method, path), expected, "{name}");
        }
    }

    #[test]
    fn times_runs_out() {
        let mut faults = FaultSet::default();
        faults.add(rule(FaultKind::Status, Some(2)));
        let path = "/servers/x";
        let statuses: Vec<bool> = (0..3)
            .map(|_| faults.plan("management.azure.com", "PUT", path).status.is_some())
            .collect();
        assert_eq!(statuses, vec![true, true, false]);
        assert!(faults.rules().is_empty());
    }
}
