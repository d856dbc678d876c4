//! The engine handle: state machines, executions as tokio tasks, the Step Functions-shaped API
//! (start, describe, list, history, stop, redrive), resume after restart and status changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast, watch};

use crate::clock::Clock;
use crate::context::ExecutionContext;
use crate::definition::Definition;
use crate::error::{Failure, names};
use crate::executor::{MAX_PAYLOAD_BYTES, Run};
use crate::history::{EventType, HistoryEvent, details};
use crate::invoker::TaskInvoker;
use crate::journal::{Journal, OpenExecution};
use crate::redrive;
use crate::store::{Batch, ExecutionRecord, ExecutionStatus, HistoryStore, StateMachineRecord, StepRecord, StoreError};
use crate::validation::Diagnostic;

/// Errors of the engine API, one variant per AWS error code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("State Machine Does Not Exist: '{0}'")]
    StateMachineDoesNotExist(String),
    #[error("State Machine Already Exists: '{0}'")]
    StateMachineAlreadyExists(String),
    #[error("Execution Does Not Exist: '{0}'")]
    ExecutionDoesNotExist(String),
    #[error("Execution Already Exists: '{0}'")]
    ExecutionAlreadyExists(String),
    #[error("{0}")]
    ExecutionNotRedrivable(String),
    #[error("Invalid State Machine Definition: {}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; "))]
    InvalidDefinition(Vec<Diagnostic>),
    #[error("Invalid Name: '{0}'")]
    InvalidName(String),
    #[error("Invalid Arn: '{0}'")]
    InvalidArn(String),
    #[error("Invalid execution input: {0}")]
    InvalidExecutionInput(String),
    #[error("Invalid token: '{0}'")]
    InvalidToken(String),
    #[error("Execution limit exceeded: {0} executions are open; wait for some to end")]
    ExecutionLimitExceeded(usize),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
}

impl EngineError {
    /// The AWS error code (`ExecutionDoesNotExist`, …) for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
            EngineError::StateMachineAlreadyExists(_) => "StateMachineAlreadyExists",
            EngineError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            EngineError::ExecutionAlreadyExists(_) => "ExecutionAlreadyExists",
            EngineError::ExecutionNotRedrivable(_) => "ExecutionNotRedrivable",
            EngineError::InvalidDefinition(_) => "InvalidDefinition",
            EngineError::InvalidName(_) => "InvalidName",
            EngineError::InvalidArn(_) => "InvalidArn",
            EngineError::InvalidExecutionInput(_) => "InvalidExecutionInput",
            EngineError::InvalidToken(_) => "InvalidToken",
            EngineError::ExecutionLimitExceeded(_) => "ExecutionLimitExceeded",
            EngineError::Store(_) => "InternalServerError",
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Executions driven at once. Beyond this an execution is started (durable, RUNNING) and
    /// waits for a slot before its first state runs.
    pub max_concurrent_executions: usize,
    /// Open (RUNNING) executions, waiting ones included; `start_execution` and
    /// `redrive_execution` fail with `ExecutionLimitExceeded` beyond this, so that a burst is
    /// refused rather than queued without bound. AWS's quota is 1,000,000.
    pub max_open_executions: usize,
    /// Used to build ARNs.
    pub region: String,
    pub account_id: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_concurrent_executions: 64,
            max_open_executions: 1_000_000,
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
        }
    }
}

/// An execution changed status (started, redriven, or ended).
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub execution: ExecutionRecord,
}

/// A page of executions.
#[derive(Debug, Clone)]
pub struct ExecutionPage {
    pub executions: Vec<ExecutionRecord>,
    pub next_token: Option<String>,
}

/// A page of history events.
#[derive(Debug, Clone)]
pub struct HistoryPage {
    pub events: Vec<HistoryEvent>,
    pub next_token: Option<String>,
}

/// A started execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedExecution {
    pub execution_arn: String,
    pub start_date: DateTime<Utc>,
}

struct Machine {
    record: StateMachineRecord,
    definition: Arc<Definition>,
}

struct Running {
    stop: watch::Sender<Option<(Option<String>, Option<String>)>>,
    /// Receives the final record when the execution ends.
    done: watch::Receiver<Option<ExecutionRecord>>,
    /// Counts it as open in the journal while it is here.
    _open: OpenExecution,
}

struct Inner {
    store: Arc<dyn HistoryStore>,
    /// Every history write of the executions goes through it (group commit).
    journal: Arc<Journal>,
    invoker: Arc<dyn TaskInvoker>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    machines: RwLock<HashMap<String, Arc<Machine>>>,
    running: Mutex<HashMap<String, Running>>,
    slots: Arc<Semaphore>,
    changes: broadcast::Sender<StatusChange>,
}

/// A handle on the engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// Whether a state machine or execution name is valid (1–80 characters, no whitespace, no
/// brackets, wildcards, special or control characters).
pub fn is_valid_name(name: &str) -> bool {
    let length = name.chars().count();
    (1..=80).contains(&length)
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// An engine over a store, a task invoker and a clock.
    pub fn new(
        store: Arc<dyn HistoryStore>,
        invoker: Arc<dyn TaskInvoker>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let mut machines = HashMap::new();
        for record in store.state_machines()? {
            match Definition::parse(&record.definition) {
                Ok(definition) => {
                    machines.insert(record.arn.clone(), Arc::new(Machine { record, definition: Arc::new(definition) }));
                }
                Err(diagnostics) => {
                    tracing::warn!(arn = %record.arn, ?diagnostics, "a stored state machine no longer validates");
                }
            }
        }
        let (changes, _) = broadcast::channel(1024);
        let journal = Journal::new(Arc::clone(&store))
            .map_err(|e| EngineError::Store(StoreError::Writer(format!("cannot start the writer thread: {e}"))))?;
        Ok(Engine {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.max_concurrent_executions.max(1))),
                store,
                journal: Arc::new(journal),
                invoker,
                clock,
                config,
                machines: RwLock::new(machines),
                running: Mutex::new(HashMap::new()),
                changes,
            }),
        })
    }

    /// The ARN a state machine called `name` gets.
    pub fn state_machine_arn(&self, name: &str) -> String {
        format!("arn:aws:states:{}:{}:stateMachine:{name}", self.inner.config.region, self.inner.config.account_id)
    }

    /// Creates a state machine (idempotent when the same definition and role are given again).
    pub fn create_state_machine(
        &self,
        name: &str,
        definition: &str,
        role_arn: &str,
    ) -> Result<StateMachineRecord, EngineError> {
        if !is_valid_name(name) {
            return Err(EngineError::InvalidName(name.to_owned()));
        }
        let arn = self.state_machine_arn(name);
        if let Some(existing) = self.state_machine(&arn) {
            if existing.definition == definition && existing.role_arn == role_arn {
                return Ok(existing);
            }
            return Err(EngineError::StateMachineAlreadyExists(arn));
        }
        let record = StateMachineRecord {
            arn,
            name: name.to_owned(),
            definition: definition.to_owned(),
            role_arn: role_arn.to_owned(),
            creation_date: self.inner.clock.now(),
        };
        self.register_state_machine(record.clone())?;
        Ok(record)
    }

    /// Registers (or replaces) a state machine under an explicit ARN.
    pub fn register_state_machine(&self, record: StateMachineRecord) -> Result<(), EngineError> {
        let definition = Definition::parse(&record.definition).map_err(EngineError::InvalidDefinition)?;
        self.inner.store.put_state_machine(&record)?;
        self.machines_mut().insert(record.arn.clone(), Arc::new(Machine { record, definition: Arc::new(definition) }));
        Ok(())
    }

    /// DeleteStateMachine: the machine can no longer be started; its executions stay readable
    /// and running ones run to their end.
    pub fn delete_state_machine(&self, arn: &str) -> Result<(), EngineError> {
        if self.machines_mut().remove(arn).is_none() {
            return Err(EngineError::StateMachineDoesNotExist(arn.to_owned()));
        }
        self.inner.store.delete_state_machine(arn)?;
        Ok(())
    }

    fn machines_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Machine>>> {
        self.inner.machines.write().unwrap_or_else(|p| p.into_inner())
    }

    /// A registered state machine.
    pub fn state_machine(&self, arn: &str) -> Option<StateMachineRecord> {
        self.machine(arn).map(|m| m.record.clone())
    }

    /// Every registered state machine.
    pub fn list_state_machines(&self) -> Vec<StateMachineRecord> {
        let machines = self.inner.machines.read().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = machines.values().map(|m| m.record.clone()).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    fn machine(&self, arn: &str) -> Option<Arc<Machine>> {
        self.inner.machines.read().unwrap_or_else(|p| p.into_inner()).get(arn).cloned()
    }

    /// Status changes of every execution (started, redriven, ended).
    pub fn subscribe(&self) -> broadcast::Receiver<StatusChange> {
        self.inner.changes.subscribe()
    }

    /// Starts an execution. Waits for a free slot when `max_concurrent_executions` run already.
    pub async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: Option<String>,
        input: Option<&str>,
    ) -> Result<StartedExecution, EngineError> {
        let machine = self
            .machine(state_machine_arn)
            .ok_or_else(|| EngineError::StateMachineDoesNotExist(state_machine_arn.to_owned()))?;
        let name = name.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        if !is_valid_name(&name) {
            return Err(EngineError::InvalidName(name));
        }
        let input_text = input.unwrap_or("{}");
        if input_text.len() > MAX_PAYLOAD_BYTES {
            return Err(EngineError::InvalidExecutionInput("the input exceeds the 262144-byte limit".to_owned()));
        }
        let input_value: Value = serde_json::from_str(input_text)
            .map_err(|e| EngineError::InvalidExecutionInput(format!("the input is not valid JSON: {e}")))?;
        let execution_arn = format!(
            "arn:aws:states:{}:{}:execution:{}:{name}",
            self.inner.config.region, self.inner.config.account_id, machine.record.name
        );
        let start_date = self.inner.clock.now();
        let record = ExecutionRecord {
            execution_arn: execution_arn.clone(),
            state_machine_arn: machine.record.arn.clone(),
            name,
            status: ExecutionStatus::Running,
            input: input_text.to_owned(),
            output: None,
            error: None,
            cause: None,
            start_date,
            stop_date: None,
            redrive_count: 0,
            redrive_date: None,
        };
        let run = self.make_run(&machine, &record, input_value.clone(), HashMap::new(), 0);
        let started = run.emit(
            0,
            EventType::new("ExecutionStarted"),
            Some({
                let mut d = details::payload("input", input_text.to_owned());
                d["roleArn"] = Value::String(machine.record.role_arn.clone());
                d
            }),
        );
        match self.launch(run, record, input_value, started, Opening::Start).await {
            Ok(()) => Ok(StartedExecution { execution_arn, start_date }),
            // Open here, or stored: the store refused the start's write (no read before it, to keep
            // a start to one commit).
            Err(Refusal::AlreadyOpen | Refusal::Engine(EngineError::Store(StoreError::ExecutionExists(_)))) => {
                match self.inner.store.execution(&execution_arn)? {
                    // AWS: the same name and input while still running is idempotent.
                    Some(existing) if existing.status == ExecutionStatus::Running && existing.input == input_text => {
                        Ok(StartedExecution { execution_arn, start_date: existing.start_date })
                    }
                    _ => Err(EngineError::ExecutionAlreadyExists(execution_arn)),
                }
            }
            Err(Refusal::Engine(error)) => Err(error),
        }
    }

    fn make_run(
        &self,
        machine: &Machine,
        record: &ExecutionRecord,
        input: Value,
        replay: HashMap<String, StepRecord>,
        last_event_id: u64,
    ) -> Run {
        let context = ExecutionContext {
            execution_arn: record.execution_arn.clone(),
            execution_name: record.name.clone(),
            input,
            role_arn: machine.record.role_arn.clone(),
            start_time: record.start_date,
            redrive_count: record.redrive_count,
            state_machine_arn: machine.record.arn.clone(),
            state_machine_name: machine.record.name.clone(),
        };
        Run::new(
            Arc::clone(&machine.definition),
            context,
            Arc::clone(&self.inner.invoker),
            Arc::clone(&self.inner.clock),
            Arc::clone(&self.inner.journal),
            replay,
            last_event_id,
        )
    }

    /// Executions open in this engine (RUNNING, driven or waiting for a slot).
    pub fn open_executions(&self) -> usize {
        lock(&self.inner.running).len()
    }

    /// Whether `start_execution` would be refused with `ExecutionLimitExceeded` now.
    pub fn at_open_limit(&self) -> bool {
        self.open_executions() >= self.inner.config.max_open_executions
    }

    /// Opens an execution: registers it as open (refusing it when it is open already, or, unless
    /// it is resumed, beyond `max_open_executions`), makes its record and the events emitted so
    /// far durable, then announces it and runs it.
    async fn launch(
        &self,
        run: Run,
        record: ExecutionRecord,
        input: Value,
        previous: u64,
        opening: Opening,
    ) -> Result<(), Refusal> {
        // Executions resumed after a restart were accepted before: the limit does not apply.
        let limited = opening != Opening::Resume;
        let (stop_tx, stop_rx) = watch::channel(None);
        let (done_tx, done_rx) = watch::channel(None);
        {
            // Checked and registered under one lock, so that concurrent starts cannot exceed the
            // limit or open the same execution twice while their records are being written.
            let mut running = lock(&self.inner.running);
            if running.contains_key(&record.execution_arn) {
                return Err(Refusal::AlreadyOpen);
            }
            if limited && running.len() >= self.inner.config.max_open_executions {
                return Err(Refusal::Engine(EngineError::ExecutionLimitExceeded(running.len())));
            }
            let open = self.inner.journal.open();
            running.insert(record.execution_arn.clone(), Running { stop: stop_tx, done: done_rx, _open: open });
        }
        // The record and ExecutionStarted / ExecutionRedriven are durable before the execution
        // is announced.
        if let Err(error) = run.flush_with(record.clone(), opening == Opening::Start).await {
            lock(&self.inner.running).remove(&record.execution_arn);
            return Err(Refusal::Engine(error.into()));
        }
        let _ = self.inner.changes.send(StatusChange { execution: record.clone() });
        let inner = Arc::clone(&self.inner);
        let timeout = run.definition.timeout_seconds;
        tokio::spawn(async move {
            let mut stopped = stop_rx.clone();
            // A stop while waiting for a slot ends the execution without taking one.
            let _permit = tokio::select! {
                permit = Arc::clone(&inner.slots).acquire_owned() => permit.ok(),
                _ = stopped.wait_for(Option::is_some) => None,
            };
            let arn = record.execution_arn.clone();
            let finished = drive(&inner, run, record, input, previous, stop_rx, timeout).await;
            lock(&inner.running).remove(&arn);
            let _ = done_tx.send(Some(finished.clone()));
            let _ = inner.changes.send(StatusChange { execution: finished });
        });
        Ok(())
    }

    /// DescribeExecution.
    pub fn describe_execution(&self, execution_arn: &str) -> Result<ExecutionRecord, EngineError> {
        self.inner
            .store
            .execution(execution_arn)?
            .ok_or_else(|| EngineError::ExecutionDoesNotExist(execution_arn.to_owned()))
    }

    /// ListExecutions, newest first; `next_token` is the token of the previous page.
    pub fn list_executions(
        &self,
        state_machine_arn: &str,
        status: Option<ExecutionStatus>,
        max_results: Option<usize>,
        next_token: Option<&str>,
    ) -> Result<ExecutionPage, EngineError> {
        if self.machine(state_machine_arn).is_none() {
            return Err(EngineError::StateMachineDoesNotExist(state_machine_arn.to_owned()));
        }
        let all = self.inner.store.executions(Some(state_machine_arn), status)?;
        let (items, next_token) = page(all, max_results, next_token)?;
        Ok(ExecutionPage { executions: items, next_token })
    }

    /// GetExecutionHistory.
    pub fn get_execution_history(
        &self,
        execution_arn: &str,
        max_results: Option<usize>,
        next_token: Option<&str>,
        reverse_order: bool,
    ) -> Result<HistoryPage, EngineError> {
        self.describe_execution(execution_arn)?;
        let mut events = self.inner.store.events(execution_arn)?;
        if reverse_order {
            events.reverse();
        }
        let (events, next_token) = page(events, max_results, next_token)?;
        Ok(HistoryPage { events, next_token })
    }

    /// StopExecution: the execution ends ABORTED with the given error and cause.
    pub async fn stop_execution(
        &self,
        execution_arn: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<DateTime<Utc>, EngineError> {
        let record = self.describe_execution(execution_arn)?;
        let done = {
            let running = lock(&self.inner.running);
            match running.get(execution_arn) {
                Some(handle) => {
                    let _ = handle.stop.send(Some((error.clone(), cause.clone())));
                    Some(handle.done.clone())
                }
                None => None,
            }
        };
        match done {
            Some(mut done) => {
                let finished = done.wait_for(Option::is_some).await.ok().and_then(|r| r.clone());
                Ok(finished.and_then(|r| r.stop_date).unwrap_or_else(|| self.inner.clock.now()))
            }
            // RUNNING in the store but not here (not resumed after a restart): end it here.
            None if record.status == ExecutionStatus::Running => {
                let last = self.inner.store.events(execution_arn)?.last().map_or(0, |e| e.id);
                let now = self.inner.clock.now();
                let mut event_details = serde_json::Map::new();
                event_details.insert(
                    "executionAbortedEventDetails".into(),
                    details::error_cause(error.as_deref(), cause.as_deref()),
                );
                let aborted = HistoryEvent {
                    timestamp: now,
                    event_type: EventType::new("ExecutionAborted"),
                    id: last + 1,
                    previous_event_id: last,
                    details: event_details,
                };
                let mut record = record;
                record.status = ExecutionStatus::Aborted;
                record.error = error;
                record.cause = cause;
                record.stop_date = Some(now);
                let batch = Batch { events: vec![aborted], execution: Some(record.clone()), ..Batch::default() };
                self.inner.journal.append(execution_arn, batch).await?;
                let _ = self.inner.changes.send(StatusChange { execution: record });
                Ok(now)
            }
            None => Ok(record.stop_date.unwrap_or_else(|| self.inner.clock.now())),
        }
    }

    /// Waits until an execution has ended and returns it.
    pub async fn wait_for_completion(&self, execution_arn: &str) -> Result<ExecutionRecord, EngineError> {
        let done = lock(&self.inner.running).get(execution_arn).map(|r| r.done.clone());
        if let Some(mut done) = done
            && let Ok(finished) = done.wait_for(Option::is_some).await
            && let Some(record) = finished.clone()
        {
            return Ok(record);
        }
        self.describe_execution(execution_arn)
    }

    /// RedriveExecution: restarts a FAILED, TIMED_OUT or ABORTED execution from the states that
    /// did not succeed.
    pub async fn redrive_execution(&self, execution_arn: &str) -> Result<DateTime<Utc>, EngineError> {
        let mut record = self.describe_execution(execution_arn)?;
        let machine = self
            .machine(&record.state_machine_arn)
            .ok_or_else(|| EngineError::StateMachineDoesNotExist(record.state_machine_arn.clone()))?;
        let events = self.inner.store.events(execution_arn)?;
        redrive::check_redrivable(&record, &events, self.inner.clock.now())
            .map_err(EngineError::ExecutionNotRedrivable)?;
        let now = self.inner.clock.now();
        record.status = ExecutionStatus::Running;
        record.redrive_count += 1;
        record.redrive_date = Some(now);
        record.stop_date = None;
        record.output = None;
        record.error = None;
        record.cause = None;
        let input: Value =
            serde_json::from_str(&record.input).map_err(|e| EngineError::Store(StoreError::Corrupt(e.to_string())))?;
        let last = events.last().map_or(0, |e| e.id);
        let replay = self.inner.store.steps(execution_arn)?;
        let run = self.make_run(&machine, &record, input.clone(), replay, last);
        let redriven =
            run.emit(last, EventType::new("ExecutionRedriven"), Some(json!({"redriveCount": record.redrive_count})));
        self.launch(run, record, input, redriven, Opening::Redrive).await.map_err(|refusal| match refusal {
            Refusal::AlreadyOpen => {
                EngineError::ExecutionNotRedrivable(format!("Execution is already being redriven: {execution_arn}"))
            }
            Refusal::Engine(error) => error,
        })?;
        Ok(now)
    }

    /// Resumes every execution the store shows as RUNNING that this engine is not running (after
    /// a restart). Returns how many were resumed.
    pub async fn resume_incomplete(&self) -> Result<usize, EngineError> {
        let mut resumed = 0;
        for record in self.inner.store.executions(None, Some(ExecutionStatus::Running))? {
            if lock(&self.inner.running).contains_key(&record.execution_arn) {
                continue;
            }
            let Some(machine) = self.machine(&record.state_machine_arn) else {
                tracing::warn!(execution = %record.execution_arn, "cannot resume: its state machine is gone");
                continue;
            };
            let events = self.inner.store.events(&record.execution_arn)?;
            let last = events.last().map_or(0, |e| e.id);
            let input: Value = serde_json::from_str(&record.input)
                .map_err(|e| EngineError::Store(StoreError::Corrupt(e.to_string())))?;
            let replay = self.inner.store.steps(&record.execution_arn)?;
            let run = self.make_run(&machine, &record, input.clone(), replay, last);
            match self.launch(run, record, input, last, Opening::Resume).await {
                Ok(()) => resumed += 1,
                // Started meanwhile by another call.
                Err(Refusal::AlreadyOpen) => {}
                Err(Refusal::Engine(error)) => return Err(error),
            }
        }
        Ok(resumed)
    }
}

fn page<T>(
    items: Vec<T>,
    max_results: Option<usize>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), EngineError> {
    let start = match next_token {
        None => 0,
        Some(token) => token
            .parse::<usize>()
            .ok()
            .filter(|s| *s <= items.len())
            .ok_or_else(|| EngineError::InvalidToken(token.to_owned()))?,
    };
    let size = match max_results {
        Some(0) | None => 1000,
        Some(n) => n.min(1000),
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items.into_iter().skip(start).take(end - start).collect(), next))
}

/// How an execution is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    Start,
    Redrive,
    Resume,
}

/// Why an execution was not opened.
enum Refusal {
    /// It is open (running, or being opened by a concurrent call).
    AlreadyOpen,
    Engine(EngineError),
}

enum Ending {
    Finished(Result<Value, Failure>, u64),
    Stopped(Option<String>, Option<String>),
    TimedOut,
}

/// Runs an execution to its end and records the outcome; returns the final record.
async fn drive(
    inner: &Inner,
    run: Run,
    mut record: ExecutionRecord,
    input: Value,
    previous: u64,
    mut stop: watch::Receiver<Option<(Option<String>, Option<String>)>>,
    timeout: Option<u64>,
) -> ExecutionRecord {
    let ending = {
        let execution = run.run_top(input, previous);
        let stopped = async {
            loop {
                if let Some((error, cause)) = stop.borrow_and_update().clone() {
                    return (error, cause);
                }
                if stop.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let timer = async {
            match timeout {
                Some(seconds) => inner.clock.timer(Duration::from_secs(seconds)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            // A stop that came while the execution waited for a slot wins before any state runs.
            biased;
            (error, cause) = stopped => Ending::Stopped(error, cause),
            outcome = execution => Ending::Finished(outcome.result, outcome.last_event),
            () = timer => Ending::TimedOut,
        }
    };
    let last_event = run.last_event_id();
    let (status, event_type, detail) = match ending {
        Ending::Finished(Ok(output), last) => {
            let text = output.to_string();
            if text.len() > MAX_PAYLOAD_BYTES {
                let failure = Failure::new(
                    names::DATA_LIMIT_EXCEEDED,
                    "The execution output exceeds the maximum number of bytes service limit.",
                );
                record.error = failure.error.clone();
                record.cause = failure.cause.clone();
                (
                    ExecutionStatus::Failed,
                    "ExecutionFailed",
                    (details::error_cause(failure.error.as_deref(), failure.cause.as_deref()), last),
                )
            } else {
                record.output = Some(text.clone());
                (ExecutionStatus::Succeeded, "ExecutionSucceeded", (details::payload("output", text), last))
            }
        }
        Ending::Finished(Err(failure), last) => {
            record.error = failure.error.clone();
            record.cause = failure.cause.clone();
            (
                ExecutionStatus::Failed,
                "ExecutionFailed",
                (details::error_cause(failure.error.as_deref(), failure.cause.as_deref()), last),
            )
        }
        Ending::Stopped(error, cause) => {
            record.error = error.clone();
            record.cause = cause.clone();
            (
                ExecutionStatus::Aborted,
                "ExecutionAborted",
                (details::error_cause(error.as_deref(), cause.as_deref()), last_event),
            )
        }
        Ending::TimedOut => {
            record.error = Some(names::TIMEOUT.to_owned());
            record.cause = None;
            (
                ExecutionStatus::TimedOut,
                "ExecutionTimedOut",
                (details::error_cause(Some(names::TIMEOUT), None), last_event),
            )
        }
    };
    let (detail, previous) = detail;
    run.emit(previous, EventType::new(event_type), Some(detail));
    record.status = status;
    record.stop_date = Some(inner.clock.now());
    if status == ExecutionStatus::Succeeded {
        // Step records serve resume and redrive, and a SUCCEEDED execution gets neither.
        run.discard_unwritten_steps();
    }
    if let Err(error) = run.flush_with(record.clone(), false).await {
        tracing::error!(execution = %record.execution_arn, %error, "cannot store the end of the execution");
    }
    record
}
