//! Request and response plumbing shared by every API: the parsed request, JSON responses,
//! case-insensitive body lookups and bearer token extraction.
//!
//! Nothing here knows about a particular Azure API's error shape; each API module builds its
//! own error bodies. Nothing here logs a header or body.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use uuid::Uuid;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// The host a client tunnelled to, attached to each request by the proxy.
#[derive(Clone, Debug)]
pub struct ConnectHost(pub String);

/// A request as the API modules see it.
#[derive(Debug)]
pub struct ApiRequest {
    /// Host the client connected to (lower case, no port).
    pub host: String,
    /// Method.
    pub method: Method,
    /// Percent-decoded path.
    pub path: String,
    /// Query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl ApiRequest {
    /// Collects an axum request into an [`ApiRequest`].
    pub async fn collect(request: axum::extract::Request) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let host = parts
            .extensions
            .get::<ConnectHost>()
            .map(|host| host.0.clone())
            .or_else(|| parts.uri.host().map(str::to_string))
            .unwrap_or_default();
        let path = percent_decode(parts.uri.path());
        let query = parts
            .uri
            .query()
            .map(serde_urlencoded::from_str::<Vec<(String, String)>>)
            .transpose()
            .map_err(|_| plain(StatusCode::BAD_REQUEST, "malformed query string"))?
            .unwrap_or_default();
        let body = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .map_err(|_| plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))?;
        Ok(Self { host, method: parts.method, path, query, headers: parts.headers, body })
    }

    /// A query parameter by name (case-insensitive, first wins).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Path segments without empty ones.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|segment| !segment.is_empty()).collect()
    }

    /// The bearer token of the `Authorization` header, if any.
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
    }

    /// The body parsed as JSON; an empty body is `null`.
    pub fn json_body(&self) -> Result<Value, serde_json::Error> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
    }
}

/// Decodes `%XX` escapes in a path (ids with `'` or spaces arrive encoded).
pub fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// A property of a JSON object looked up case-insensitively (ARM matches names that way).
pub fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(name).or_else(|| {
        map.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value)
    })
}

/// A string property looked up case-insensitively.
pub fn field_str<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    field(object, name).and_then(Value::as_str)
}

/// A boolean property looked up case-insensitively.
pub fn field_bool(object: &Value, name: &str) -> Option<bool> {
    field(object, name).and_then(Value::as_bool)
}

/// A JSON response with the given status and extra headers.
pub fn json_response(status: StatusCode, body: &Value, headers: &[(&str, String)]) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let response_headers = response.headers_mut();
    response_headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) =
            (header::HeaderName::try_from(*name), HeaderValue::from_str(value))
        {
            response_headers.insert(name, value);
        }
    }
    response
}

/// An empty response with the given status and extra headers.
pub fn empty_response(status: StatusCode, headers: &[(&str, String)]) -> Response {
    let mut response = json_response(status, &Value::Null, headers);
    *response.body_mut() = Body::empty();
    response.headers_mut().remove(header::CONTENT_TYPE);
    response
}

/// A plain-text response, for requests no Azure API would understand.
pub fn plain(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(message.to_string()));
    *response.status_mut() = status;
    response
}

/// A fresh request id.
pub fn request_id() -> String {
    Uuid::new_v4().to_string()
}

/// Current time in RFC 3339 with seconds precision and `Z`.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format_rfc3339(now)
}

/// Formats a time the way Azure does (`2024-01-02T03:04:05.678Z`).
pub fn format_rfc3339(moment: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    moment
        .to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_string())
}

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percent_decode_cases() {
        let cases = [
            ("plain", "/v1.0/applications", "/v1.0/applications"),
            ("quote", "/applications(appId=%27abc%27)", "/applications(appId='abc')"),
            ("truncated escape", "/a%2", "/a%2"),
            ("bad hex", "/a%zz", "/a%zz"),
        ];
        for (name, input, expected) in cases {
            assert_eq!(percent_decode(input), expected, "{name}");
        }
    }

    #[test]
    fn field_is_case_insensitive() {
        let body = json!({"Properties": {"KeyId": "k"}, "location": "x"});
        let cases = [
            ("exact", field_str(&body, "location"), Some("x")),
            (
                "other case",
                field(&body, "properties").and_then(|p| field_str(p, "keyId")),
                Some("k"),
            ),
            ("missing", field_str(&body, "tags"), None),
        ];
        for (name, actual, expected) in cases {
            assert_eq!(actual, expected, "{name}");
        }
    }
}
