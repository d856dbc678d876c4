//! How the engine reaches task code: a [`TaskInvoker`] the caller provides.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Notify;

/// What a Task state asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskTarget {
    /// A Lambda function called directly by its ARN (`Resource` is the function ARN).
    LambdaFunction { function_arn: String },
    /// `arn:aws:states:::lambda:invoke`: the function named by the `FunctionName` parameter
    /// (a name, a partial ARN or a full ARN, as the definition gives it).
    LambdaInvoke { function_name: String },
    /// Any other resource (another service integration or an activity), passed through as is.
    Other { resource: String },
}

/// One task invocation.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub target: TaskTarget,
    /// The `Resource` field after placeholder substitution.
    pub resource: String,
    /// The effective payload: for Lambda targets the event the function receives.
    pub payload: Value,
    pub execution_arn: String,
    pub state_name: String,
    /// 0 for the first attempt, then 1, 2, … for retries.
    pub attempt: u32,
}

/// A task failure, shaped like a Lambda error: `error` becomes the ASL error name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskError { error: error.into(), cause: cause.into() }
    }

    /// The error a Lambda function reports when it raises: the error name is `errorType` and the
    /// cause is the error JSON itself, as Step Functions reports it.
    pub fn from_lambda_error(error_json: &Value) -> Self {
        let error = error_json.get("errorType").and_then(Value::as_str).unwrap_or("Lambda.Unknown").to_owned();
        TaskError { error, cause: error_json.to_string() }
    }
}

/// How a running task tells the engine that it is still making progress, as
/// SendTaskHeartbeat does on AWS: each [`Heartbeat::beat`] restarts the state's
/// `HeartbeatSeconds` countdown. Cheap to clone; beats from any clone count.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    beats: Arc<Notify>,
}

impl Heartbeat {
    /// A heartbeat of its own (the engine gives every invocation one; callers of an invoker
    /// outside the engine can pass a fresh one nobody watches).
    pub fn new() -> Self {
        Heartbeat::default()
    }

    /// Reports progress.
    pub fn beat(&self) {
        // A beat sent while nobody waits is kept (one permit), so none is lost between waits.
        self.beats.notify_one();
    }

    /// Completes at the next beat.
    pub(crate) async fn next_beat(&self) {
        self.beats.notified().await;
    }
}

/// Runs tasks for the engine. Implementations must be cheap to call concurrently.
#[async_trait]
pub trait TaskInvoker: Send + Sync {
    /// Runs one task and returns its result (for Lambda: the function's return value).
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError>;

    /// Runs one task that may report progress through `heartbeat`; this is what the engine
    /// calls. The default runs [`TaskInvoker::invoke`] and never beats, as a Lambda function
    /// never does: a Task with `HeartbeatSeconds` then fails once its task runs longer than that.
    /// Invokers whose tasks send heartbeats (activities, callbacks) implement this one.
    async fn invoke_with_heartbeat(&self, request: TaskRequest, heartbeat: Heartbeat) -> Result<Value, TaskError> {
        drop(heartbeat);
        self.invoke(request).await
    }
}

/// An invoker that has no tasks: every task fails with a clear message.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTasks;

#[async_trait]
impl TaskInvoker for NoTasks {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        Err(TaskError::new(
            "States.Runtime",
            format!("No task invoker is configured for the resource '{}'", request.resource),
        ))
    }
}
