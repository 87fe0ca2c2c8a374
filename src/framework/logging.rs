//! Logging in the form Terraform reads from a provider's stderr: one JSON object per line with
//! `@level`, `@message`, `@timestamp` (microseconds, as go-plugin requires) and the fields of the
//! event and of every span around it (`tf_rpc`, `tf_req_id`, `tf_resource_type`, ...).
//!
//! The level comes from `TF_LOG_PROVIDER`, else `TF_LOG`, like the Go providers; Terraform filters
//! again on its side. Only fields recorded explicitly reach a line: spans are never created with a
//! bare `instrument`, so request payloads and secrets cannot leak in by accident.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// Installs the Terraform log writer for this process. Calling it twice is harmless.
///
/// The requested level applies to this crate; dependencies stay at warnings, since their TLS and
/// HTTP/2 traces would flood Terraform's log without telling the user anything.
pub fn init() {
    let level = level_from_environment(|name| std::env::var(name).ok());
    let targets = Targets::new()
        .with_default(LevelFilter::WARN.min(level))
        .with_target("azurecmk", level)
        .with_target("terraform_provider_azurecmk", level);
    let subscriber = tracing_subscriber::registry().with(TerraformLogLayer.with_filter(targets));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The level Terraform asked for: `TF_LOG_PROVIDER` first, then `TF_LOG`; warnings when unset.
pub fn level_from_environment(lookup: impl Fn(&str) -> Option<String>) -> LevelFilter {
    let setting = lookup("TF_LOG_PROVIDER").or_else(|| lookup("TF_LOG")).unwrap_or_default();
    match setting.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "JSON" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "INFO" => LevelFilter::INFO,
        "ERROR" => LevelFilter::ERROR,
        "OFF" => LevelFilter::OFF,
        _ => LevelFilter::WARN,
    }
}

/// Writes hclog-style JSON lines to stderr.
struct TerraformLogLayer;

/// The fields recorded on a span, kept in its extensions.
struct SpanFields(Map<String, Json>);

impl<S> Layer<S> for TerraformLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut fields = FieldCollector(Map::new());
        attributes.record(&mut fields);
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        let Some(span) = context.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            let mut collector = FieldCollector(std::mem::take(fields));
            values.record(&mut collector);
            *fields = collector.0;
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let mut line = Map::new();
        if let Some(scope) = context.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.clone());
                }
            }
        }
        let mut fields = FieldCollector(Map::new());
        event.record(&mut fields);
        let message = fields.0.remove("message").unwrap_or(Json::String(String::new()));
        line.extend(fields.0);

        line.insert("@level".into(), Json::String(level_name(event.metadata().level()).into()));
        line.insert("@message".into(), message);
        line.insert("@timestamp".into(), Json::String(timestamp(OffsetDateTime::now_utc())));
        line.insert("@module".into(), Json::String("provider.terraform-provider-azurecmk".into()));

        let mut text = Json::Object(line).to_string();
        text.push('\n');
        // One write per line so concurrent events never interleave inside a line.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// go-plugin parses `2006-01-02T15:04:05.000000Z07:00`: exactly six fractional digits.
fn timestamp(now: OffsetDateTime) -> String {
    let seconds = now.replace_nanosecond(0).unwrap_or(now);
    let mut text = seconds.format(&Rfc3339).unwrap_or_default();
    // Rfc3339 renders whole seconds without a fraction: insert the microseconds before the zone.
    if let Some(zone_start) = text.rfind(['Z', '+', '-']) {
        let mut fraction = String::new();
        let _ = write!(fraction, ".{:06}", now.microsecond());
        text.insert_str(zone_start, &fraction);
    }
    text
}

struct FieldCollector(Map<String, Json>);

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Json::String(value.into()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Json::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Json::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Json::Bool(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().into(), Json::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_setting_wins_over_the_general_one() {
        let cases = [
            ("unset", None, None, LevelFilter::WARN),
            ("general", None, Some("debug"), LevelFilter::DEBUG),
            ("provider wins", Some("TRACE"), Some("ERROR"), LevelFilter::TRACE),
            ("json means trace", None, Some("JSON"), LevelFilter::TRACE),
            ("off", Some("off"), None, LevelFilter::OFF),
        ];
        for (name, provider, general, expected) in cases {
            let lookup = |key: &str| match key {
                "TF_LOG_PROVIDER" => provider.map(str::to_string),
                "TF_LOG" => general.map(str::to_string),
                _ => None,
            };
            assert_eq!(level_from_environment(lookup), expected, "{name}");
        }
    }

    #[test]
    fn timestamps_have_exactly_microseconds() {
        let moment = time::macros::datetime!(2026-12-03 15:53:38.617260123 UTC);
        assert_eq!(timestamp(moment), "2026-12-03T15:53:38.617260Z");
        let whole = time::macros::datetime!(2026-12-03 15:53:38 UTC);
        assert_eq!(timestamp(whole), "2026-12-03T15:53:38.000000Z");
    }
}
