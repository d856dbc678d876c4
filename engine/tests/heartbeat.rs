//! HeartbeatSeconds: a task that sends no heartbeat within HeartbeatSeconds times out
//! (`States.Timeout` in its TimedOut event, as AWS records it; matched by
//! `States.HeartbeatTimeout` too), each heartbeat restarts the countdown, and TimeoutSeconds
//! bounds the task however often it beats. Virtual time: the tasks advance the InstantClock.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imgflow_engine::{
    Clock as _, Engine, EngineConfig, ExecutionRecord, ExecutionStatus, Heartbeat, HistoryEvent, InstantClock,
    MemoryStore, TaskError, TaskInvoker, TaskRequest,
};
use serde_json::{Value, json};

const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:work";

/// Runs for `payload.seconds` of virtual time, beating every `payload.beat_every` seconds
/// (never when absent), and then returns `"done"`.
struct Worker {
    clock: Arc<InstantClock>,
}

#[async_trait]
impl TaskInvoker for Worker {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        self.invoke_with_heartbeat(request, Heartbeat::new()).await
    }

    async fn invoke_with_heartbeat(&self, request: TaskRequest, heartbeat: Heartbeat) -> Result<Value, TaskError> {
        let seconds = request.payload["seconds"].as_u64().unwrap_or(0);
        let step = request.payload["beat_every"].as_u64().unwrap_or(seconds).max(1);
        let mut elapsed = 0;
        while elapsed < seconds {
            let next = step.min(seconds - elapsed);
            self.clock.sleep(Duration::from_secs(next)).await;
            elapsed += next;
            if request.payload.get("beat_every").is_some() {
                heartbeat.beat();
            }
        }
        Ok(json!("done"))
    }
}

/// A worker that never beats, through the default `invoke_with_heartbeat` (as a Lambda
/// function, which cannot send heartbeats).
struct SilentWorker {
    clock: Arc<InstantClock>,
}

#[async_trait]
impl TaskInvoker for SilentWorker {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        let seconds = request.payload["seconds"].as_u64().unwrap_or(0);
        self.clock.sleep(Duration::from_secs(seconds)).await;
        Ok(json!("done"))
    }
}

async fn run(invoker: Arc<dyn TaskInvoker>, clock: Arc<InstantClock>, definition: Value, input: Value) -> Outcome {
    let engine = Engine::new(Arc::new(MemoryStore::new()), invoker, clock, EngineConfig::default()).unwrap();
    let machine = engine.create_state_machine("heartbeat", &definition.to_string(), "arn:aws:iam::1:role/r").unwrap();
    let started = engine.start_execution(&machine.arn, None, Some(&input.to_string())).await.unwrap();
    let record = engine.wait_for_completion(&started.execution_arn).await.unwrap();
    let history = engine.get_execution_history(&started.execution_arn, None, None, false).unwrap().events;
    Outcome { record, history }
}

struct Outcome {
    record: ExecutionRecord,
    history: Vec<HistoryEvent>,
}

impl Outcome {
    fn event(&self, event_type: &str) -> Option<&HistoryEvent> {
        self.history.iter().find(|e| e.event_type.as_str() == event_type)
    }

    fn output(&self) -> Value {
        serde_json::from_str(self.record.output.as_deref().unwrap_or("null")).unwrap()
    }
}

fn clock() -> Arc<InstantClock> {
    Arc::new(InstantClock::new().with_timers())
}

fn worker(clock: &Arc<InstantClock>) -> Arc<dyn TaskInvoker> {
    Arc::new(Worker { clock: Arc::clone(clock) })
}

fn one_task(task: Value) -> Value {
    let mut task = task;
    task["Type"] = json!("Task");
    task["End"] = json!(true);
    json!({"StartAt": "Work", "States": {"Work": task}})
}

#[tokio::test]
async fn a_task_without_heartbeats_fails_after_heartbeat_seconds() {
    let clock = clock();
    let definition = one_task(json!({"Resource": FUNCTION, "HeartbeatSeconds": 5, "TimeoutSeconds": 60}));
    let outcome = run(worker(&clock), Arc::clone(&clock), definition, json!({"seconds": 10})).await;
    assert_eq!(outcome.record.status, ExecutionStatus::Failed);
    assert_eq!(outcome.record.error.as_deref(), Some("States.Timeout"));
    let timed_out = outcome.event("LambdaFunctionTimedOut").expect("a LambdaFunctionTimedOut event");
    assert_eq!(timed_out.detail().unwrap()["error"], "States.Timeout");
    assert!(outcome.event("LambdaFunctionSucceeded").is_none());
}

#[tokio::test]
async fn heartbeats_keep_a_long_task_alive() {
    let clock = clock();
    let definition = one_task(json!({"Resource": FUNCTION, "HeartbeatSeconds": 5, "TimeoutSeconds": 60}));
    let outcome = run(worker(&clock), Arc::clone(&clock), definition, json!({"seconds": 40, "beat_every": 4})).await;
    assert_eq!(outcome.record.status, ExecutionStatus::Succeeded, "{:?}", outcome.record);
    assert_eq!(outcome.output(), json!("done"));
}

#[tokio::test]
async fn beats_too_far_apart_time_out() {
    let clock = clock();
    let definition = one_task(json!({"Resource": FUNCTION, "HeartbeatSeconds": 5, "TimeoutSeconds": 60}));
    let outcome = run(worker(&clock), Arc::clone(&clock), definition, json!({"seconds": 40, "beat_every": 6})).await;
    assert_eq!(outcome.record.status, ExecutionStatus::Failed);
    assert_eq!(outcome.record.error.as_deref(), Some("States.Timeout"));
}

#[tokio::test]
async fn timeout_seconds_bounds_a_task_however_often_it_beats() {
    let clock = clock();
    let definition = json!({
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task", "Resource": FUNCTION, "HeartbeatSeconds": 5, "TimeoutSeconds": 20, "End": true,
                "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "CaughtAsHeartbeat"}]
            },
            "CaughtAsHeartbeat": {"Type": "Fail", "Error": "CaughtAsHeartbeat"}
        }
    });
    let outcome = run(worker(&clock), Arc::clone(&clock), definition, json!({"seconds": 40, "beat_every": 2})).await;
    // A plain timeout is not a heartbeat timeout: the Catch does not apply.
    assert_eq!(outcome.record.status, ExecutionStatus::Failed);
    assert_eq!(outcome.record.error.as_deref(), Some("States.Timeout"));
}

#[tokio::test]
async fn retry_and_catch_match_a_missed_heartbeat_as_heartbeat_timeout_and_as_timeout() {
    let definition = json!({
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": FUNCTION, "Payload.$": "$"},
                "HeartbeatSeconds": 3,
                "Retry": [{"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 2, "IntervalSeconds": 1}],
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "Handled"}],
                "End": true
            },
            "Handled": {"Type": "Pass", "End": true}
        }
    });
    let clock = clock();
    let outcome = run(worker(&clock), Arc::clone(&clock), definition, json!({"seconds": 4})).await;
    assert_eq!(outcome.record.status, ExecutionStatus::Succeeded, "{:?}", outcome.record);
    assert_eq!(outcome.output(), json!({"seconds": 4, "error": {"Error": "States.Timeout"}}));
    let types: Vec<&str> = outcome.history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types.iter().filter(|t| **t == "TaskTimedOut").count(), 3, "the first attempt and two retries");
    let scheduled = outcome.event("TaskScheduled").unwrap().detail().unwrap();
    assert_eq!(scheduled["heartbeatInSeconds"], 3);
}

#[tokio::test]
async fn heartbeat_seconds_path_and_the_default_invoker_that_never_beats() {
    let clock = clock();
    let definition = one_task(json!({"Resource": FUNCTION, "HeartbeatSecondsPath": "$.heartbeat"}));
    let silent: Arc<dyn TaskInvoker> = Arc::new(SilentWorker { clock: Arc::clone(&clock) });
    let outcome =
        run(Arc::clone(&silent), Arc::clone(&clock), definition.clone(), json!({"seconds": 9, "heartbeat": 8})).await;
    assert_eq!(outcome.record.status, ExecutionStatus::Failed);
    assert_eq!(outcome.record.error.as_deref(), Some("States.Timeout"));
    let outcome = run(silent, Arc::clone(&clock), definition, json!({"seconds": 7, "heartbeat": 8})).await;
    assert_eq!(outcome.record.status, ExecutionStatus::Succeeded, "{:?}", outcome.record);
}
