//! History events, with the types and fields of GetExecutionHistory.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// An event type, e.g. `TaskStateEntered` or `ExecutionSucceeded`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventType(pub String);

impl EventType {
    pub fn new(name: impl Into<String>) -> Self {
        EventType(name.into())
    }

    /// `{Type}StateEntered` for a state type name.
    pub fn state_entered(state_type: &str) -> Self {
        EventType(format!("{state_type}StateEntered"))
    }

    /// `{Type}StateExited` for a state type name.
    pub fn state_exited(state_type: &str) -> Self {
        EventType(format!("{state_type}StateExited"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the details field this event type carries, as in the AWS API
    /// (`stateEnteredEventDetails`, `taskFailedEventDetails`, …), or `None` when it has none.
    pub fn details_key(&self) -> Option<String> {
        let name = self.0.as_str();
        let lower_first = |s: &str| {
            let mut c = s.chars();
            c.next().map(|f| f.to_lowercase().collect::<String>() + c.as_str()).unwrap_or_default()
        };
        if name.ends_with("StateEntered") {
            return Some("stateEnteredEventDetails".into());
        }
        if name.ends_with("StateExited") {
            return Some("stateExitedEventDetails".into());
        }
        if name.starts_with("MapIteration") {
            return Some(format!("{}EventDetails", lower_first(name)));
        }
        match name {
            "LambdaFunctionStarted"
            | "MapStateSucceeded"
            | "MapStateFailed"
            | "MapStateAborted"
            | "ParallelStateStarted"
            | "ParallelStateSucceeded"
            | "ParallelStateFailed"
            | "ParallelStateAborted" => None,
            _ => Some(format!("{}EventDetails", lower_first(name))),
        }
    }

    /// Whether this event ends an execution.
    pub fn is_terminal(&self) -> bool {
        matches!(self.0.as_str(), "ExecutionSucceeded" | "ExecutionFailed" | "ExecutionAborted" | "ExecutionTimedOut")
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One history event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub id: u64,
    #[serde(rename = "previousEventId")]
    pub previous_event_id: u64,
    /// The details object under its AWS field name (e.g. `{"stateEnteredEventDetails": {…}}`).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl HistoryEvent {
    /// The details object, if any.
    pub fn detail(&self) -> Option<&Value> {
        self.event_type.details_key().and_then(|key| self.details.get(&key))
    }
}

/// Builders for the details of each event type (`truncated` is always false: payloads are
/// capped at 256 KiB before they get here).
pub mod details {
    use super::*;

    pub fn payload(field: &str, text: String) -> Value {
        let mut m = Map::new();
        m.insert(field.to_owned(), Value::String(text));
        m.insert(format!("{field}Details"), json!({"truncated": false}));
        Value::Object(m)
    }

    pub fn state_entered(name: &str, input: String) -> Value {
        let mut v = payload("input", input);
        v["name"] = Value::String(name.to_owned());
        v
    }

    pub fn state_exited(name: &str, output: String, assigned: Option<&Map<String, Value>>) -> Value {
        let mut v = payload("output", output);
        v["name"] = Value::String(name.to_owned());
        if let Some(assigned) = assigned {
            let rendered: Map<String, Value> =
                assigned.iter().map(|(k, v)| (k.clone(), Value::String(v.to_string()))).collect();
            v["assignedVariables"] = Value::Object(rendered);
            v["assignedVariablesDetails"] = json!({"truncated": false});
        }
        v
    }

    pub fn error_cause(error: Option<&str>, cause: Option<&str>) -> Value {
        let mut m = Map::new();
        if let Some(error) = error {
            m.insert("error".into(), error.into());
        }
        if let Some(cause) = cause {
            m.insert("cause".into(), cause.into());
        }
        Value::Object(m)
    }
}
