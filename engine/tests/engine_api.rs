//! The engine API the local twin builds on: start (idempotency, names), describe, list, history,
//! stop, redrive (only failed iterations run again) and resume after a restart with SQLite.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use imgflow_engine::{
    Engine, EngineConfig, EngineError, ExecutionStatus, HistoryStore, InstantClock, MemoryStore, SqliteStore,
    TaskError, TaskInvoker, TaskRequest,
};
use serde_json::{Value, json};

/// Counts calls per payload; fails payloads equal to `failing` while `broken` is set; never
/// answers while `hang` is set.
#[derive(Default)]
struct Recorder {
    calls: Mutex<HashMap<String, usize>>,
    broken: AtomicBool,
    hang: AtomicBool,
    failing: Mutex<Option<Value>>,
}

impl Recorder {
    fn calls(&self, payload: &Value) -> usize {
        self.calls.lock().unwrap().get(&payload.to_string()).copied().unwrap_or(0)
    }
}

#[async_trait]
impl TaskInvoker for Recorder {
    async fn invoke(&self, request: TaskRequest) -> Result<Value, TaskError> {
        *self.calls.lock().unwrap().entry(request.payload.to_string()).or_insert(0) += 1;
        if self.hang.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.broken.load(Ordering::SeqCst) && self.failing.lock().unwrap().as_ref() == Some(&request.payload) {
            return Err(TaskError::new("TransientError", "the dependency is down"));
        }
        Ok(json!({"done": request.payload}))
    }
}

const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:work";

fn engine(store: Arc<dyn HistoryStore>, invoker: Arc<Recorder>) -> Engine {
    Engine::new(store, invoker, Arc::new(InstantClock::new()), EngineConfig::default()).unwrap()
}

fn map_definition() -> String {
    json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Next": "Each"},
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "StartAt": "Work",
                    "States": {"Work": {"Type": "Task", "Resource": FUNCTION, "End": true}}
                },
                "End": true
            }
        }
    })
    .to_string()
}

#[tokio::test]
async fn redrive_runs_only_the_failed_iterations() {
    let invoker = Arc::new(Recorder::default());
    *invoker.failing.lock().unwrap() = Some(json!(2));
    invoker.broken.store(true, Ordering::SeqCst);
    let engine = engine(Arc::new(MemoryStore::new()), Arc::clone(&invoker));
    let machine = engine.create_state_machine("redrive", &map_definition(), "arn:aws:iam::1:role/r").unwrap();
    let started = engine.start_execution(&machine.arn, Some("one".into()), Some(r#"{"items":[1,2,3]}"#)).await.unwrap();
    let failed = engine.wait_for_completion(&started.execution_arn).await.unwrap();
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("TransientError"));

    invoker.broken.store(false, Ordering::SeqCst);
    engine.redrive_execution(&started.execution_arn).await.unwrap();
    let done = engine.wait_for_completion(&started.execution_arn).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(done.redrive_count, 1);
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(output, json!([{"done": 1}, {"done": 2}, {"done": 3}]));
    assert_eq!(invoker.calls(&json!(1)), 1, "a succeeded iteration ran again");
    assert_eq!(invoker.calls(&json!(3)), 1, "a succeeded iteration ran again");
    assert_eq!(invoker.calls(&json!(2)), 2);

    let history = engine.get_execution_history(&started.execution_arn, None, None, false).unwrap().events;
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types.iter().filter(|t| **t == "ExecutionRedriven").count(), 1);
    assert_eq!(types.last(), Some(&"ExecutionSucceeded"));
    assert_eq!(types.iter().filter(|t| **t == "PassStateEntered").count(), 1, "Prepare ran again");
    for (i, event) in history.iter().enumerate() {
        assert_eq!(event.id, i as u64 + 1);
        assert!(event.previous_event_id < event.id);
    }
    match engine.redrive_execution(&started.execution_arn).await {
        Err(EngineError::ExecutionNotRedrivable(_)) => {}
        other => panic!("a succeeded execution was redriven: {other:?}"),
    }
}

#[tokio::test]
async fn a_restarted_engine_resumes_running_executions_from_their_last_step() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine.db");
    let first_invoker = Arc::new(Recorder::default());
    first_invoker.hang.store(true, Ordering::SeqCst);
    let first = engine(Arc::new(SqliteStore::open(&path).unwrap()), Arc::clone(&first_invoker));
    let machine = first.create_state_machine("resume", &map_definition(), "arn:aws:iam::1:role/r").unwrap();
    let started = first.start_execution(&machine.arn, Some("crash".into()), Some(r#"{"items":[7]}"#)).await.unwrap();
    while first_invoker.calls(&json!(7)) == 0 {
        tokio::task::yield_now().await;
    }
    // The first engine is stuck inside the task, as if the process had been killed there.
    let second_invoker = Arc::new(Recorder::default());
    let second = engine(Arc::new(SqliteStore::open(&path).unwrap()), Arc::clone(&second_invoker));
    assert_eq!(second.resume_incomplete().await.unwrap(), 1);
    let done = second.wait_for_completion(&started.execution_arn).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output.as_deref(), Some(r#"[{"done":7}]"#));
    let history = second.get_execution_history(&started.execution_arn, None, None, false).unwrap().events;
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types.iter().filter(|t| **t == "ExecutionStarted").count(), 1);
    assert_eq!(types.iter().filter(|t| **t == "PassStateEntered").count(), 1, "Prepare ran again");
}

#[tokio::test]
async fn start_describe_list_and_stop_behave_as_step_functions() {
    let invoker = Arc::new(Recorder::default());
    invoker.hang.store(true, Ordering::SeqCst);
    let engine = engine(Arc::new(MemoryStore::new()), Arc::clone(&invoker));
    let machine = engine.create_state_machine("api", &map_definition(), "arn:aws:iam::1:role/r").unwrap();
    assert!(matches!(
        engine.create_state_machine("api", "{}", "arn:aws:iam::1:role/r"),
        Err(EngineError::StateMachineAlreadyExists(_))
    ));
    assert!(matches!(
        engine.create_state_machine("bad", r#"{"StartAt":"X","States":{}}"#, "r"),
        Err(EngineError::InvalidDefinition(_))
    ));
    let input = r#"{"items":[1]}"#;
    let first = engine.start_execution(&machine.arn, Some("same".into()), Some(input)).await.unwrap();
    let again = engine.start_execution(&machine.arn, Some("same".into()), Some(input)).await.unwrap();
    assert_eq!(first, again, "the same name and input while running is idempotent");
    assert!(matches!(
        engine.start_execution(&machine.arn, Some("same".into()), Some(r#"{"items":[]}"#)).await,
        Err(EngineError::ExecutionAlreadyExists(_))
    ));
    assert!(matches!(
        engine.start_execution(&machine.arn, Some("bad name".into()), None).await,
        Err(EngineError::InvalidName(_))
    ));
    assert!(matches!(
        engine.start_execution(&machine.arn, None, Some("{not json")).await,
        Err(EngineError::InvalidExecutionInput(_))
    ));
    while invoker.calls(&json!(1)) == 0 {
        tokio::task::yield_now().await;
    }
    let mut changes = engine.subscribe();
    engine.stop_execution(&first.execution_arn, Some("Stopped".into()), Some("by the test".into())).await.unwrap();
    let stopped = engine.describe_execution(&first.execution_arn).unwrap();
    assert_eq!(stopped.status, ExecutionStatus::Aborted);
    assert_eq!(stopped.error.as_deref(), Some("Stopped"));
    assert_eq!(changes.recv().await.unwrap().execution.status, ExecutionStatus::Aborted);

    invoker.hang.store(false, Ordering::SeqCst);
    for name in ["b", "c"] {
        let started = engine.start_execution(&machine.arn, Some(name.into()), Some(input)).await.unwrap();
        engine.wait_for_completion(&started.execution_arn).await.unwrap();
    }
    let page = engine.list_executions(&machine.arn, Some(ExecutionStatus::Succeeded), Some(1), None).unwrap();
    assert_eq!(page.executions.len(), 1);
    assert_eq!(page.executions[0].name, "c");
    let rest = engine
        .list_executions(&machine.arn, Some(ExecutionStatus::Succeeded), Some(1), page.next_token.as_deref())
        .unwrap();
    assert_eq!(rest.executions[0].name, "b");
    assert!(rest.next_token.is_none());
    assert!(matches!(engine.describe_execution("arn:nope"), Err(EngineError::ExecutionDoesNotExist(_))));
    engine.delete_state_machine(&machine.arn).unwrap();
    assert!(matches!(
        engine.start_execution(&machine.arn, None, None).await,
        Err(EngineError::StateMachineDoesNotExist(_))
    ));
    assert_eq!(engine.describe_execution(&first.execution_arn).unwrap().status, ExecutionStatus::Aborted);
    let reversed = engine.get_execution_history(&first.execution_arn, Some(2), None, true).unwrap();
    assert_eq!(reversed.events[0].event_type.as_str(), "ExecutionAborted");
    assert!(reversed.next_token.is_some());
}

#[tokio::test]
async fn task_and_execution_timeouts_use_the_clock() {
    let invoker = Arc::new(Recorder::default());
    invoker.hang.store(true, Ordering::SeqCst);
    let engine = Engine::new(
        Arc::new(MemoryStore::new()),
        Arc::clone(&invoker) as Arc<dyn TaskInvoker>,
        Arc::new(imgflow_engine::RealClock),
        EngineConfig::default(),
    )
    .unwrap();
    let task_timeout = json!({
        "StartAt": "Slow",
        "States": {
            "Slow": {
                "Type": "Task", "Resource": FUNCTION, "TimeoutSeconds": 1, "End": true,
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "TimedOut"}]
            },
            "TimedOut": {"Type": "Pass", "End": true}
        }
    });
    let machine = engine.create_state_machine("task-timeout", &task_timeout.to_string(), "r").unwrap();
    let started = engine.start_execution(&machine.arn, None, Some(r#"{"x":1}"#)).await.unwrap();
    let done = engine.wait_for_completion(&started.execution_arn).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    let output: Value = serde_json::from_str(done.output.as_deref().unwrap()).unwrap();
    assert_eq!(output, json!({"x": 1, "error": {"Error": "States.Timeout"}}));
    let history = engine.get_execution_history(&started.execution_arn, None, None, false).unwrap().events;
    assert!(history.iter().any(|e| e.event_type.as_str() == "LambdaFunctionTimedOut"));

    let execution_timeout = json!({
        "TimeoutSeconds": 1,
        "StartAt": "Slow",
        "States": {"Slow": {"Type": "Task", "Resource": FUNCTION, "End": true}}
    });
    let machine = engine.create_state_machine("execution-timeout", &execution_timeout.to_string(), "r").unwrap();
    let started = engine.start_execution(&machine.arn, None, None).await.unwrap();
    let done = engine.wait_for_completion(&started.execution_arn).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::TimedOut);
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
}

#[tokio::test]
async fn a_failing_branch_or_iteration_cancels_the_others() {
    let invoker = Arc::new(Recorder::default());
    invoker.hang.store(true, Ordering::SeqCst);
    let engine = engine(Arc::new(MemoryStore::new()), Arc::clone(&invoker));
    let slow = json!({"Type": "Task", "Resource": FUNCTION, "End": true});
    let parallel = json!({
        "StartAt": "Both",
        "States": {"Both": {"Type": "Parallel", "End": true, "Branches": [
            {"StartAt": "Slow", "States": {"Slow": slow}},
            {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Boom"}}}
        ]}}
    });
    let map = json!({
        "StartAt": "Each",
        "States": {"Each": {"Type": "Map", "End": true, "ItemProcessor": {
            "StartAt": "Which",
            "States": {
                "Which": {"Type": "Choice", "Choices": [{"Variable": "$", "NumericEquals": 2, "Next": "Boom"}], "Default": "Slow"},
                "Slow": slow,
                "Boom": {"Type": "Fail", "Error": "Boom"}
            }
        }}}
    });
    for (name, definition, input) in [("parallel", parallel, "{}"), ("map", map, "[1, 2]")] {
        let machine = engine.create_state_machine(name, &definition.to_string(), "r").unwrap();
        let started = engine.start_execution(&machine.arn, None, Some(input)).await.unwrap();
        let done =
            tokio::time::timeout(std::time::Duration::from_secs(5), engine.wait_for_completion(&started.execution_arn))
                .await
                .expect("the failure did not cancel the hanging branch or iteration")
                .unwrap();
        assert_eq!(done.status, ExecutionStatus::Failed, "{name}");
        assert_eq!(done.error.as_deref(), Some("Boom"), "{name}");
        if name == "map" {
            let history = engine.get_execution_history(&started.execution_arn, None, None, false).unwrap().events;
            let aborted: Vec<_> = history.iter().filter(|e| e.event_type.as_str() == "MapIterationAborted").collect();
            assert_eq!(aborted.len(), 1);
            assert_eq!(aborted[0].detail().unwrap()["index"], json!(0));
        }
    }
}

#[tokio::test]
async fn executions_beyond_the_slots_start_at_once_and_beyond_the_open_limit_are_refused() {
    let invoker = Arc::new(Recorder::default());
    invoker.hang.store(true, Ordering::SeqCst);
    let config = EngineConfig { max_concurrent_executions: 1, max_open_executions: 3, ..EngineConfig::default() };
    let engine =
        Engine::new(Arc::new(MemoryStore::new()), invoker.clone(), Arc::new(InstantClock::new()), config).unwrap();
    let task = json!({"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": FUNCTION, "End": true}}});
    let machine = engine.create_state_machine("slots", &task.to_string(), "arn:aws:iam::1:role/r").unwrap();
    let mut started = Vec::new();
    for n in 0..3 {
        // Returns although the one slot is taken by the first, hanging execution.
        let input = json!({"n": n}).to_string();
        started.push(engine.start_execution(&machine.arn, None, Some(&input)).await.unwrap().execution_arn);
    }
    for arn in &started {
        assert_eq!(engine.describe_execution(arn).unwrap().status, ExecutionStatus::Running);
    }
    let refused = engine.start_execution(&machine.arn, None, Some("{}")).await.unwrap_err();
    assert!(matches!(refused, EngineError::ExecutionLimitExceeded(3)), "{refused:?}");
    assert_eq!(refused.code(), "ExecutionLimitExceeded");
    for _ in 0..100 {
        if invoker.calls(&json!({"n": 0})) == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(invoker.calls(&json!({"n": 0})), 1);
    assert_eq!(invoker.calls(&json!({"n": 2})), 0, "the third execution waits for a slot");

    // Stopping a waiting execution ends it without running a state, and frees room.
    engine.stop_execution(&started[2], Some("Cancelled".into()), None).await.unwrap();
    assert_eq!(engine.describe_execution(&started[2]).unwrap().status, ExecutionStatus::Aborted);
    assert_eq!(invoker.calls(&json!({"n": 2})), 0);
    engine.start_execution(&machine.arn, None, Some("{}")).await.unwrap();
}

/// A start whose name is taken is refused by the store's write itself (there is no read before
/// it): by both stores, for an execution that has ended (idempotency only covers running ones),
/// and without touching the stored execution or its history.
#[tokio::test]
async fn a_start_under_a_stored_name_is_refused_by_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let stores: [Arc<dyn HistoryStore>; 2] =
        [Arc::new(MemoryStore::new()), Arc::new(SqliteStore::open(dir.path().join("engine.db")).unwrap())];
    for store in stores {
        let engine = engine(store, Arc::new(Recorder::default()));
        let definition = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}).to_string();
        let machine = engine.create_state_machine("once", &definition, "arn:aws:iam::1:role/r").unwrap();
        let started = engine.start_execution(&machine.arn, Some("n".into()), Some("{}")).await.unwrap();
        let done = engine.wait_for_completion(&started.execution_arn).await.unwrap();
        assert_eq!(done.status, ExecutionStatus::Succeeded);
        let history = engine.get_execution_history(&started.execution_arn, None, None, false).unwrap().events;
        assert!(matches!(
            engine.start_execution(&machine.arn, Some("n".into()), Some("{}")).await,
            Err(EngineError::ExecutionAlreadyExists(_))
        ));
        assert_eq!(engine.describe_execution(&started.execution_arn).unwrap(), done);
        assert_eq!(engine.get_execution_history(&started.execution_arn, None, None, false).unwrap().events, history);
        // Another name still starts.
        let other = engine.start_execution(&machine.arn, Some("m".into()), Some("{}")).await.unwrap();
        assert_eq!(engine.wait_for_completion(&other.execution_arn).await.unwrap().status, ExecutionStatus::Succeeded);
    }
}
