//! The durability contract with group commit, checked through a second connection to the same
//! SQLite file (what a restarted process would read): when `start_execution` returns, the
//! execution and ExecutionStarted are durable; when an execution is reported ended, its end is.

use std::sync::Arc;

use async_trait::async_trait;
use imgflow_engine::{
    Engine, EngineConfig, ExecutionStatus, HistoryStore, InstantClock, SqliteStore, TaskError, TaskInvoker, TaskRequest,
};
use serde_json::{Value, json};

/// Never answers: the execution stays inside its task.
struct Hang;

#[async_trait]
impl TaskInvoker for Hang {
    async fn invoke(&self, _request: TaskRequest) -> Result<Value, TaskError> {
        std::future::pending().await
    }
}

fn engine(path: &std::path::Path) -> Engine {
    let store = Arc::new(SqliteStore::open(path).unwrap());
    Engine::new(store, Arc::new(Hang), Arc::new(InstantClock::new()), EngineConfig::default()).unwrap()
}

fn short_machine() -> String {
    json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "C"}], "Default": "C"},
            "C": {"Type": "Succeed"}
        }
    })
    .to_string()
}

#[tokio::test]
async fn a_started_execution_is_durable_when_start_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine.db");
    let engine = engine(&path);
    let definition = json!({
        "StartAt": "Stuck",
        "States": {"Stuck": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "End": true}}
    });
    let machine = engine.create_state_machine("stuck", &definition.to_string(), "arn:aws:iam::1:role/r").unwrap();
    let started = engine.start_execution(&machine.arn, Some("one".into()), Some(r#"{"x":1}"#)).await.unwrap();
    let other = SqliteStore::open(&path).unwrap();
    let record = other.execution(&started.execution_arn).unwrap().expect("the execution is stored");
    assert_eq!(record.status, ExecutionStatus::Running);
    let events = other.events(&started.execution_arn).unwrap();
    assert_eq!(events[0].event_type.as_str(), "ExecutionStarted");
}

#[tokio::test]
async fn executions_started_back_to_back_are_durable_when_reported_ended() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine.db");
    let engine = engine(&path);
    let machine = engine.create_state_machine("short", &short_machine(), "arn:aws:iam::1:role/r").unwrap();
    let mut changes = engine.subscribe();
    let mut arns = Vec::new();
    for n in 0..50 {
        arns.push(engine.start_execution(&machine.arn, Some(format!("run-{n}")), Some(r#"{"x":1}"#)).await.unwrap());
    }
    let other = SqliteStore::open(&path).unwrap();
    let mut ended = 0;
    while ended < arns.len() {
        let change = changes.recv().await.unwrap().execution;
        if !change.status.is_terminal() {
            continue;
        }
        ended += 1;
        // Reported ended: its end is in the file already.
        let stored = other.execution(&change.execution_arn).unwrap().unwrap();
        assert_eq!(stored.status, ExecutionStatus::Succeeded);
        let events = other.events(&change.execution_arn).unwrap();
        let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, (1..=events.len() as u64).collect::<Vec<_>>(), "no event is missing");
        assert_eq!(events.last().unwrap().event_type.as_str(), "ExecutionSucceeded");
    }
    for started in &arns {
        let done = engine.wait_for_completion(&started.execution_arn).await.unwrap();
        assert_eq!(done.output.as_deref(), Some(r#"{"x":1}"#));
        assert_eq!(other.execution(&started.execution_arn).unwrap().unwrap().status, ExecutionStatus::Succeeded);
    }
}
