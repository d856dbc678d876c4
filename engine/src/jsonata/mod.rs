//! JSONata evaluation for Amazon States Language states in `QueryLanguage: "JSONata"` mode.
//!
//! Interim skeleton: the interface is final; evaluation is being implemented.

use serde_json::{Map, Value};

/// What an expression can see: `$states` and the visible workflow variables.
pub struct Bindings<'a> {
    /// The `$states` object: `{"input": …, "context": …}` plus `"result"` / `"errorOutput"` when defined.
    pub states: &'a Value,
    /// Visible workflow variables, referenced as `$name`.
    pub variables: &'a Map<String, Value>,
}

/// A JSONata failure, named as Step Functions names it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct JsonataError {
    /// The ASL error name, e.g. `States.QueryEvaluationError`.
    pub error: String,
    /// Human-readable cause.
    pub message: String,
}

/// The ASL error for expressions that fail at run time.
pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";

/// Whether `s` is a JSONata expression string (`{% … %}`) as Step Functions recognises it.
pub fn is_expression(s: &str) -> bool {
    s.len() >= 4 && s.starts_with("{%") && s.ends_with("%}")
}

/// Checks the syntax of an expression string, for validation diagnostics.
pub fn check_syntax(s: &str) -> Result<(), JsonataError> {
    Err(not_yet_supported(s))
}

/// Evaluates an expression string; `Ok(None)` means the result is undefined.
pub fn evaluate(s: &str, _bindings: &Bindings) -> Result<Option<Value>, JsonataError> {
    Err(not_yet_supported(s))
}

/// Evaluates every expression string inside a JSON template; other values are kept literally.
pub fn evaluate_template(template: &Value, bindings: &Bindings) -> Result<Value, JsonataError> {
    match template {
        Value::String(s) if is_expression(s) => Ok(evaluate(s, bindings)?.unwrap_or(Value::Null)),
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| Ok((k.clone(), evaluate_template(v, bindings)?)))
            .collect::<Result<Map<_, _>, _>>()
            .map(Value::Object),
        Value::Array(items) => items
            .iter()
            .map(|v| evaluate_template(v, bindings))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn not_yet_supported(s: &str) -> JsonataError {
    JsonataError {
        error: QUERY_EVALUATION_ERROR.to_owned(),
        message: format!("JSONata evaluation is not yet supported: {s}"),
    }
}
