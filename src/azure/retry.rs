//! When to retry a call and how long to wait: pure decisions, no I/O.
//!
//! This module owns the retry and polling policies and the parsing of `Retry-After`. It must
//! never sleep or send; `client` and `lro` do that, so the decisions here stay testable.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};

/// How often and how patiently a failed call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; the deadline may stop earlier.
    pub max_retries: u32,
    /// Backoff before the first retry, doubled for each further one.
    pub initial_delay: Duration,
    /// Upper bound of the computed backoff (a server's `Retry-After` may ask for more).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 8,
            initial_delay: Duration::from_millis(800),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// How often a long-running operation is polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollingPolicy {
    /// Interval when Azure gives no `Retry-After`.
    pub default_interval: Duration,
    /// Shortest interval: Microsoft.Sql sends `Retry-After: 0`, which must not become a busy loop.
    pub min_interval: Duration,
    /// Longest interval, whatever Azure asks, so a finished operation is noticed soon.
    pub max_interval: Duration,
}

impl Default for PollingPolicy {
    fn default() -> Self {
        Self {
            default_interval: Duration::from_secs(5),
            min_interval: Duration::from_millis(200),
            max_interval: Duration::from_secs(60),
        }
    }
}

impl PollingPolicy {
    /// The wait before the next poll, given the `Retry-After` of the last response.
    pub fn interval(&self, retry_after: Option<Duration>) -> Duration {
        retry_after.unwrap_or(self.default_interval).clamp(self.min_interval, self.max_interval)
    }
}

/// Why an attempt did not succeed, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Azure answered with this status.
    Status {
        /// The status.
        status: StatusCode,
        /// What the response asked us to wait, if anything.
        retry_after: Option<Duration>,
    },
    /// No answer: `connect` is true when the request never left (refused, DNS, TLS).
    Transport {
        /// Whether the failure happened before the request was sent.
        connect: bool,
    },
}

/// Whether a request may be sent twice without harm.
///
/// ARM and Graph PUT, PATCH and DELETE set state, so repeating them is safe. POST creates
/// (Graph applications, Key Vault key versions), so it is retried only when the first attempt
/// certainly did nothing: a refused connection, 429, or 503.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::PUT | Method::PATCH | Method::DELETE)
}

/// The wait before the next attempt, or `None` to give up with this failure.
///
/// `retries_done` counts retries already made; `jitter` is a number in `[0, 1)` (random in
/// production, fixed in tests). Other 4xx statuses are never retried: they would fail again.
pub fn retry_delay(
    policy: &RetryPolicy,
    method: &Method,
    idempotent: bool,
    retries_done: u32,
    failure: Failure,
    jitter: f64,
) -> Option<Duration> {
    if retries_done >= policy.max_retries {
        return None;
    }
    let retry_after = match failure {
        Failure::Status { status, retry_after } => {
            let always = status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::SERVICE_UNAVAILABLE;
            let when_idempotent = matches!(
                status,
                StatusCode::REQUEST_TIMEOUT
                    | StatusCode::INTERNAL_SERVER_ERROR
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::GATEWAY_TIMEOUT
            );
            if !(always || (when_idempotent && (idempotent || is_idempotent(method)))) {
                return None;
            }
            retry_after
        }
        Failure::Transport { connect } => {
            if !(connect || idempotent || is_idempotent(method)) {
                return None;
            }
            None
        }
    };
    Some(retry_after.unwrap_or_else(|| backoff(policy, retries_done, jitter)))
}

/// Exponential backoff with "equal jitter": half the step fixed, half random, so clients that
/// failed together do not retry together.
pub fn backoff(policy: &RetryPolicy, retries_done: u32, jitter: f64) -> Duration {
    let factor = 2u32.saturating_pow(retries_done.min(16));
    let step = policy.initial_delay.saturating_mul(factor).min(policy.max_delay);
    let jitter = jitter.clamp(0.0, 1.0);
    step / 2 + step.mul_f64(jitter / 2.0)
}

/// The wait a response asks for: `x-ms-retry-after-ms` or `retry-after-ms` (milliseconds), else
/// `Retry-After` as seconds or as an HTTP date.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);

    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(milliseconds) = text(name).and_then(|value| value.parse::<u64>().ok()) {
            return Some(Duration::from_millis(milliseconds));
        }
    }
    let value = text("retry-after")?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = parse_http_date(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let parsed = time::PrimitiveDateTime::parse(value, &format).ok()?;
    Some(parsed.assume_utc().into())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use reqwest::header::{HeaderMap, HeaderValue};
    use reqwest::{Method, StatusCode};

    use super::{Failure, PollingPolicy, RetryPolicy, backoff, parse_retry_after, retry_delay};

    fn status(code: u16, retry_after: Option<u64>) -> Failure {
        Failure::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn retry_decisions() {
        let policy = RetryPolicy::default();
        let half_step = Some(Duration::from_millis(400));
        let cases: Vec<(&str, Method, u32, Failure, Option<Duration>)> = vec![
            (
                "429 honours retry-after",
                Method::PUT,
                0,
                status(429, Some(7)),
                Some(Duration::from_secs(7)),
            ),
            ("429 without retry-after backs off", Method::GET, 0, status(429, None), half_step),
            (
                "429 retried for POST",
                Method::POST,
                0,
                status(429, Some(1)),
                Some(Duration::from_secs(1)),
            ),
            ("503 retried for POST", Method::POST, 0, status(503, None), half_step),
            ("500 retried for PUT", Method::PUT, 0, status(500, None), half_step),
            ("500 not retried for POST", Method::POST, 0, status(500, None), None),
            ("502 retried for DELETE", Method::DELETE, 0, status(502, None), half_step),
            ("400 never", Method::GET, 0, status(400, None), None),
            ("401 never", Method::GET, 0, status(401, None), None),
            ("404 never", Method::GET, 0, status(404, None), None),
            ("409 never", Method::PUT, 0, status(409, None), None),
            (
                "connect error for POST",
                Method::POST,
                0,
                Failure::Transport { connect: true },
                half_step,
            ),
            ("reset for GET", Method::GET, 0, Failure::Transport { connect: false }, half_step),
            ("reset for POST", Method::POST, 0, Failure::Transport { connect: false }, None),
            ("retries exhausted", Method::GET, 8, status(503, None), None),
        ];
        for (name, method, retries_done, failure, expected) in cases {
            let decided = retry_delay(&policy, &method, false, retries_done, failure, 0.0);
            assert_eq!(decided, expected, "{name}");
        }
    }

    #[test]
    fn marked_idempotent_posts_are_retried() {
        let policy = RetryPolicy::default();
        let decided = retry_delay(&policy, &Method::POST, true, 0, status(500, None), 0.0);
        assert!(decided.is_some());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 20,
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        };
        let cases = [
            ("first, no jitter", 0, 0.0, Duration::from_millis(500)),
            ("first, full jitter", 0, 1.0, Duration::from_secs(1)),
            ("third", 2, 0.0, Duration::from_secs(2)),
            ("capped", 10, 1.0, Duration::from_secs(10)),
            ("huge exponent", 40, 0.0, Duration::from_secs(5)),
        ];
        for (name, retries_done, jitter, expected) in cases {
            assert_eq!(backoff(&policy, retries_done, jitter), expected, "{name}");
        }
    }

    #[test]
    fn retry_after_parsing() {
        // 1994-11-06T08:49:27Z, ten seconds before the date used below.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_767);
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<Duration>);
        let cases: Vec<Case> = vec![
            ("seconds", vec![("retry-after", "5")], Some(Duration::from_secs(5))),
            ("zero", vec![("retry-after", "0")], Some(Duration::ZERO)),
            (
                "http date",
                vec![("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")],
                Some(Duration::from_secs(10)),
            ),
            (
                "date in the past",
                vec![("retry-after", "Sun, 06 Nov 1994 08:00:00 GMT")],
                Some(Duration::ZERO),
            ),
            (
                "ms header wins",
                vec![("retry-after", "5"), ("x-ms-retry-after-ms", "1500")],
                Some(Duration::from_millis(1500)),
            ),
            ("retry-after-ms", vec![("retry-after-ms", "250")], Some(Duration::from_millis(250))),
            ("garbage", vec![("retry-after", "soon")], None),
            ("negative", vec![("retry-after", "-1")], None),
            ("absent", vec![], None),
        ];
        for (name, headers, expected) in cases {
            let mut map = HeaderMap::new();
            for (header, value) in headers {
                map.insert(header, HeaderValue::from_static(value));
            }
            assert_eq!(parse_retry_after(&map, now), expected, "{name}");
        }
    }

    #[test]
    fn polling_interval_is_bounded() {
        let policy = PollingPolicy::default();
        let cases = [
            ("absent", None, Duration::from_secs(5)),
            ("zero gets the floor", Some(Duration::ZERO), Duration::from_millis(200)),
            ("honoured", Some(Duration::from_secs(3)), Duration::from_secs(3)),
            ("capped", Some(Duration::from_secs(600)), Duration::from_secs(60)),
        ];
        for (name, retry_after, expected) in cases {
            assert_eq!(policy.interval(retry_after), expected, "{name}");
        }
    }
}
