//! The Wait state: `Seconds`, `Timestamp`, their `…Path` forms and JSONata expressions.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::definition::{Expr, Fields};
use crate::error::{Failure, names};
use crate::states::choice::parse_timestamp;

/// Step Functions' upper bound for `Seconds` (and for waits in general).
pub const MAX_WAIT_SECONDS: u64 = 99_999_999;

/// A Wait state.
#[derive(Debug)]
pub struct Wait {
    pub until: WaitFor,
}

/// How long to wait.
#[derive(Debug)]
pub enum WaitFor {
    Seconds(Expr<u64>),
    Timestamp(Expr<String>),
}

impl Wait {
    pub(crate) fn parse(fields: &mut Fields) -> Wait {
        let given = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"].iter().filter(|k| fields.has(k)).count();
        if given != 1 {
            fields.error_here("A Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath");
        }
        let until = if fields.has("Timestamp") || fields.has("TimestampPath") {
            let expr = fields.expr(
                "Timestamp",
                Some("TimestampPath"),
                |v| v.as_str().filter(|s| parse_timestamp(s).is_some()).map(str::to_owned),
                "an ISO-8601 extended offset date-time string",
            );
            WaitFor::Timestamp(expr.unwrap_or(Expr::Literal(String::new())))
        } else {
            let expr = fields.expr(
                "Seconds",
                Some("SecondsPath"),
                |v| v.as_u64().filter(|s| *s <= MAX_WAIT_SECONDS),
                "an integer from 0 to 99999999",
            );
            WaitFor::Seconds(expr.unwrap_or(Expr::Literal(0)))
        };
        Wait { until }
    }
}

/// What a Wait state resolved to: a number of seconds from now, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitTarget {
    Duration(Duration),
    Until(DateTime<Utc>),
}

/// Checks a `SecondsPath` value.
pub fn seconds_from_path(path: &str, value: &Value) -> Result<WaitTarget, Failure> {
    match value.as_f64() {
        Some(s) if s < 0.0 => {
            Err(Failure::runtime(format!("The SecondsPath parameter references a negative value: {path} == {value}")))
        }
        Some(s) if s.fract() == 0.0 && s <= MAX_WAIT_SECONDS as f64 => {
            Ok(WaitTarget::Duration(Duration::from_secs(s as u64)))
        }
        _ => Err(Failure::runtime(format!(
            "The SecondsPath parameter does not reference a valid integer value: {path} == {value}"
        ))),
    }
}

/// Checks a `TimestampPath` value.
pub fn timestamp_from_path(path: &str, value: &Value) -> Result<WaitTarget, Failure> {
    match value.as_str().and_then(parse_timestamp) {
        Some(t) => Ok(WaitTarget::Until(t.with_timezone(&Utc))),
        None => Err(Failure::runtime(format!(
            "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {path} == {}",
            value.as_str().map_or_else(|| value.to_string(), str::to_owned)
        ))),
    }
}

/// Checks a JSONata `Seconds` result.
pub fn seconds_from_jsonata(value: &Value) -> Result<WaitTarget, Failure> {
    match value.as_f64() {
        Some(s) if s >= 0.0 && s.fract() == 0.0 && s <= MAX_WAIT_SECONDS as f64 => {
            Ok(WaitTarget::Duration(Duration::from_secs(s as u64)))
        }
        _ => Err(Failure::about_state(
            names::QUERY_EVALUATION_ERROR,
            format!("The Seconds field must be an integer from 0 to {MAX_WAIT_SECONDS}, but was: {value}"),
        )),
    }
}

/// Checks a JSONata `Timestamp` result.
pub fn timestamp_from_jsonata(value: &Value) -> Result<WaitTarget, Failure> {
    match value.as_str().and_then(parse_timestamp) {
        Some(t) => Ok(WaitTarget::Until(t.with_timezone(&Utc))),
        None => Err(Failure::about_state(
            names::QUERY_EVALUATION_ERROR,
            format!(
                "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {}",
                value.as_str().map_or_else(|| value.to_string(), str::to_owned)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_values_are_checked() {
        assert_eq!(seconds_from_path("$.s", &json!(3)).unwrap(), WaitTarget::Duration(Duration::from_secs(3)));
        let negative = seconds_from_path("$.s", &json!(-1)).unwrap_err();
        assert_eq!(negative.cause.as_deref(), Some("The SecondsPath parameter references a negative value: $.s == -1"));
        assert!(timestamp_from_path("$.t", &json!("2016-12-05 21:29:29Z")).is_err());
        assert!(timestamp_from_path("$.t", &json!("2016-03-05T21:29:29.243167252Z")).is_ok());
        assert!(timestamp_from_jsonata(&json!("2026-11-25T19:42:47")).is_err());
    }
}
