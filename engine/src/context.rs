//! The context object (`$$` in JSONPath, `$states.context` in JSONata).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// What the context object says about the execution (fixed for a run).
#[derive(Debug, Clone)]
pub struct ExecutionContext {
    pub execution_arn: String,
    pub execution_name: String,
    pub input: Value,
    pub role_arn: String,
    pub start_time: DateTime<Utc>,
    pub redrive_count: u32,
    pub state_machine_arn: String,
    pub state_machine_name: String,
}

/// Formats a time as Step Functions does in the context object (milliseconds, `Z`).
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl ExecutionContext {
    /// The context object for a state; `retry_count` is given for states that can retry (Task,
    /// Parallel, Map).
    pub fn for_state(&self, state_name: &str, entered_time: DateTime<Utc>, retry_count: Option<u32>) -> Value {
        let mut context = Map::new();
        context.insert(
            "Execution".into(),
            json!({
                "Id": self.execution_arn,
                "Input": self.input,
                "Name": self.execution_name,
                "RoleArn": self.role_arn,
                "StartTime": format_time(self.start_time),
                "RedriveCount": self.redrive_count,
            }),
        );
        let mut state = json!({
            "EnteredTime": format_time(entered_time),
            "Name": state_name,
        });
        if let Some(retry_count) = retry_count {
            state["RetryCount"] = json!(retry_count);
        }
        context.insert("State".into(), state);
        context.insert("StateMachine".into(), json!({"Id": self.state_machine_arn, "Name": self.state_machine_name}));
        Value::Object(context)
    }
}
