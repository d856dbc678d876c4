//! Errors raised while states run (the ASL `Error`/`Cause` pair), and the well-known error names.

/// Well-known ASL error names.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const RUNTIME: &str = "States.Runtime";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    pub const BRANCH_FAILED: &str = "States.BranchFailed";
}

/// A state's failure: what Catch and Retry match on and what ExecutionFailed reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error name; `None` when a Fail state gives none.
    pub error: Option<String>,
    /// The cause; `None` when none was given.
    pub cause: Option<String>,
    /// Whether the cause describes a problem with the state itself, so that the executor prefixes
    /// it with "An error occurred while executing the state '…' (entered at the event id #…)."
    pub about_state: bool,
    /// Whether a task sent no heartbeat within its `HeartbeatSeconds`. AWS reports that as
    /// `States.Timeout` (in the TimedOut event and the execution's error); Retry and Catch also
    /// match it with `States.HeartbeatTimeout`, which matches nothing else.
    pub missed_heartbeat: bool,
}

impl Failure {
    /// A failure with an error name and a cause, e.g. from a task.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Failure { error: Some(error.into()), cause: Some(cause.into()), about_state: false, missed_heartbeat: false }
    }

    /// A `States.Runtime` failure about the current state (never caught by Catch).
    pub fn runtime(cause: impl Into<String>) -> Self {
        Failure::about_state(names::RUNTIME, cause)
    }

    /// A failure about the current state with the given error name.
    pub fn about_state(error: &str, cause: impl Into<String>) -> Self {
        Failure { error: Some(error.to_owned()), cause: Some(cause.into()), about_state: true, missed_heartbeat: false }
    }

    /// A task's timeout (`States.Timeout`, no cause); `missed_heartbeat` when it was the
    /// heartbeat's.
    pub fn task_timeout(missed_heartbeat: bool) -> Self {
        Failure { error: Some(names::TIMEOUT.to_owned()), cause: None, about_state: false, missed_heartbeat }
    }

    /// Adds AWS's state prefix to the cause when the failure is about the state.
    pub fn located(mut self, state: &str, entered_event_id: u64) -> Self {
        if self.about_state {
            let cause = self.cause.take().unwrap_or_default();
            self.cause = Some(format!(
                "An error occurred while executing the state '{state}' (entered at the event id #{entered_event_id}). {cause}"
            ));
            self.about_state = false;
        }
        self
    }

    /// The error name as Retry/Catch see it (`""` when none).
    pub fn name(&self) -> &str {
        self.error.as_deref().unwrap_or("")
    }

    /// The `{"Error": …, "Cause": …}` object a Catch passes on.
    pub fn to_error_output(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        if let Some(error) = &self.error {
            object.insert("Error".into(), error.clone().into());
        }
        if let Some(cause) = &self.cause {
            object.insert("Cause".into(), cause.clone().into());
        }
        serde_json::Value::Object(object)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            self.error.as_deref().unwrap_or("(no error)"),
            self.cause.as_deref().unwrap_or("(no cause)")
        )
    }
}
