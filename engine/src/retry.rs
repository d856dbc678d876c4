//! Retry and Catch: which errors they match, retry delays, and where caught errors go.

use std::time::Duration;

use serde_json::Value;

use crate::definition::{Fields, OptionalPath, Payload};
use crate::error::{Failure, names};
use crate::validation::pointer_token;

/// One `Retry` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    /// `JitterStrategy: FULL`: each delay is drawn uniformly from [0, delay].
    pub full_jitter: bool,
}

/// One `Catch` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    /// JSONPath `ResultPath` for the error output (`None` = `null`: the state input is kept).
    pub result_path: OptionalPath,
    pub assign: Option<Payload>,
    /// JSONata `Output`.
    pub output: Option<Value>,
}

/// Whether an `ErrorEquals` list matches a failure. `States.Runtime` is never matched: AWS
/// treats it as not retriable and not catchable.
pub fn matches(error_equals: &[String], failure: &Failure) -> bool {
    let name = failure.name();
    if name == names::RUNTIME {
        return false;
    }
    error_equals.iter().any(|e| {
        e == name
            || e == names::ALL
            || (e == names::TASK_FAILED && is_task_failure(name))
            || (e == names::HEARTBEAT_TIMEOUT && failure.missed_heartbeat)
    })
}

/// `States.TaskFailed` matches any task error except timeouts.
fn is_task_failure(name: &str) -> bool {
    !name.starts_with("States.") || name == names::TASK_FAILED
}

impl Retrier {
    /// The delay before retry number `attempt` (0-based), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let mut seconds = self.interval_seconds * self.backoff_rate.powi(attempt as i32);
        if let Some(max) = self.max_delay_seconds {
            seconds = seconds.min(max);
        }
        if self.full_jitter {
            seconds *= fastrand::f64();
        }
        Duration::from_secs_f64(seconds.max(0.0))
    }
}

fn error_equals(fields: &mut Fields, key_location: &str) -> Vec<String> {
    let list: Vec<String> = match fields.get("ErrorEquals") {
        Some(Value::Array(items)) if !items.is_empty() => {
            items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
        }
        _ => {
            fields.error_here("ErrorEquals must be a non-empty array of strings");
            return Vec::new();
        }
    };
    if list.iter().any(|e| e == names::ALL) && list.len() > 1 {
        fields.error("ErrorEquals", format!("States.ALL must appear alone in ErrorEquals ({key_location})"));
    }
    list
}

/// Parses `Retry` and `Catch` of a state.
pub(crate) fn parse(fields: &mut Fields) -> (Vec<Retrier>, Vec<Catcher>) {
    let retry = parse_list(fields, "Retry", parse_retrier);
    let catch = parse_list(fields, "Catch", parse_catcher);
    (retry, catch)
}

fn parse_list<T>(fields: &mut Fields, key: &str, item: fn(&mut Fields) -> T) -> Vec<T> {
    let Some(value) = fields.get(key) else {
        return Vec::new();
    };
    let Value::Array(entries) = value else {
        fields.error(key, format!("{key} must be an array"));
        return Vec::new();
    };
    let mut out = Vec::new();
    let last = entries.len().saturating_sub(1);
    for (i, entry) in entries.iter().enumerate() {
        let location = format!("{}/{}/{i}", fields.location, pointer_token(key));
        let Some(object) = entry.as_object() else {
            fields.error(key, format!("Each {key} entry must be an object"));
            continue;
        };
        let mut entry_fields = Fields::new(object, location, fields.diagnostics);
        entry_fields.query_language = fields.query_language;
        let parsed = item(&mut entry_fields);
        entry_fields.string("Comment");
        entry_fields.finish(&[]);
        let is_all =
            object.get("ErrorEquals").and_then(Value::as_array).is_some_and(|e| e.iter().any(|v| v == names::ALL));
        if is_all && i != last {
            fields.error(key, format!("States.ALL must be in the last {key} entry"));
        }
        out.push(parsed);
    }
    out
}

fn parse_retrier(fields: &mut Fields) -> Retrier {
    let error_equals = error_equals(fields, "Retry");
    let interval_seconds = fields.number("IntervalSeconds").unwrap_or(1.0);
    let max_attempts = match fields.get("MaxAttempts") {
        None => 3,
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            n.as_u64().map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX))
        }
        Some(_) => {
            fields.error("MaxAttempts", "MaxAttempts must be a non-negative integer");
            3
        }
    };
    let backoff_rate = fields.number("BackoffRate").unwrap_or(2.0);
    if backoff_rate < 1.0 {
        fields.error("BackoffRate", "BackoffRate must be at least 1.0");
    }
    let max_delay_seconds = fields.positive_integer("MaxDelaySeconds").map(|s| s as f64);
    let full_jitter = match fields.string("JitterStrategy").as_deref() {
        None | Some("NONE") => false,
        Some("FULL") => true,
        Some(other) => {
            fields.error("JitterStrategy", format!("JitterStrategy must be FULL or NONE, not '{other}'"));
            false
        }
    };
    Retrier { error_equals, interval_seconds, max_attempts, backoff_rate, max_delay_seconds, full_jitter }
}

fn parse_catcher(fields: &mut Fields) -> Catcher {
    let error_equals = error_equals(fields, "Catch");
    let next = fields.required_string("Next").unwrap_or_default();
    let (result_path, output) = if fields.is_jsonata() {
        (Some(crate::path::Path::whole()), fields.jsonata_template("Output"))
    } else {
        (fields.optional_path("ResultPath"), None)
    };
    let assign = fields.assign("Assign");
    Catcher { error_equals, next, result_path, assign, output }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_aws_rules() {
        let all = vec![names::ALL.to_owned()];
        assert!(matches(&all, &Failure::new("Custom", "x")));
        assert!(!matches(&all, &Failure::runtime("x")));
        assert!(!matches(&[names::RUNTIME.to_owned()], &Failure::runtime("x")));
        let task_failed = vec![names::TASK_FAILED.to_owned()];
        assert!(matches(&task_failed, &Failure::new("Lambda.Unknown", "x")));
        assert!(!matches(&task_failed, &Failure::new(names::TIMEOUT, "x")));
        assert!(matches(&[names::DATA_LIMIT_EXCEEDED.to_owned()], &Failure::new(names::DATA_LIMIT_EXCEEDED, "x")));
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let retrier = Retrier {
            error_equals: vec![],
            interval_seconds: 3.0,
            max_attempts: 5,
            backoff_rate: 2.0,
            max_delay_seconds: Some(5.0),
            full_jitter: false,
        };
        assert_eq!(retrier.delay(0), Duration::from_secs(3));
        assert_eq!(retrier.delay(1), Duration::from_secs(5));
    }
}
