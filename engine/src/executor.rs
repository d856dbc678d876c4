//! The executor: runs one execution of a definition, state by state, emitting history events
//! and step records, with Retry/Catch, variables and nested Parallel/Map machines.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::clock::Clock;
use crate::context::ExecutionContext;
use crate::definition::{
    Definition, Expr, Machine, OptionalPath, Payload, QueryLanguage, ResultHandling, State, StateKind, Transition,
};
use crate::error::{Failure, names};
use crate::history::{EventType, HistoryEvent, details};
use crate::invoker::{Heartbeat, TaskError, TaskInvoker, TaskRequest, TaskTarget};
use crate::journal::{Commit, Journal};
use crate::jsonata::{self, Bindings};
use crate::retry;
use crate::states::map::Map as MapState;
use crate::states::parallel::Parallel;
use crate::states::task::{self, Task};
use crate::states::wait::{self, WaitFor, WaitTarget};
use crate::store::{Batch, ExecutionRecord, StepRecord};
use crate::template::{Scope, Template, Variables};

/// Step Functions' payload limit (input, output, results): 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// How a machine (the top level, a branch or an iteration) ended.
pub(crate) struct MachineOutcome {
    pub result: Result<Value, Failure>,
    /// The id of the last event this machine emitted.
    pub last_event: u64,
}

/// Per-machine running state.
struct Frame {
    /// Identifies the machine in step-record keys (`""` at the top level).
    key_prefix: String,
    variables: Variables,
    /// The last event emitted on this thread of execution.
    previous: u64,
}

/// What a state did when it succeeded.
struct Step {
    output: Value,
    next: Option<String>,
    assigned: Option<Map<String, Value>>,
}

/// One execution being run.
pub(crate) struct Run {
    pub definition: Arc<Definition>,
    pub context: ExecutionContext,
    pub invoker: Arc<dyn TaskInvoker>,
    pub clock: Arc<dyn Clock>,
    pub journal: Arc<Journal>,
    /// Step records of a previous run (resume, redrive): finished states are replayed.
    pub replay: HashMap<String, StepRecord>,
    next_event_id: AtomicU64,
    /// Events and step records not yet written (see [`Run::flush`]).
    pending: Mutex<Pending>,
    uses_context: bool,
}

/// A Task state's time limits, in seconds.
#[derive(Debug, Clone, Copy)]
struct TaskLimits {
    timeout: Option<u64>,
    heartbeat: Option<u64>,
}

/// How a task invocation ended.
enum TaskEnd {
    Finished(Result<Value, TaskError>),
    TimedOut { missed_heartbeat: bool },
}

/// Records kept for the next flush.
#[derive(Default)]
struct Pending {
    events: Vec<HistoryEvent>,
    steps: Vec<(String, StepRecord)>,
}

/// The most events kept in memory between two flushes.
const FLUSH_EVERY: usize = 256;

type BoxedOutcome<'a> = Pin<Box<dyn Future<Output = MachineOutcome> + Send + 'a>>;

impl Run {
    pub fn new(
        definition: Arc<Definition>,
        context: ExecutionContext,
        invoker: Arc<dyn TaskInvoker>,
        clock: Arc<dyn Clock>,
        journal: Arc<Journal>,
        replay: HashMap<String, StepRecord>,
        last_event_id: u64,
    ) -> Self {
        Run {
            uses_context: definition.uses_context,
            definition,
            context,
            invoker,
            clock,
            journal,
            replay,
            next_event_id: AtomicU64::new(last_event_id + 1),
            pending: Mutex::new(Pending::default()),
        }
    }

    /// Emits an event after `previous`; returns its id.
    pub fn emit(&self, previous: u64, event_type: EventType, detail: Option<Value>) -> u64 {
        let id = self.next_event_id.fetch_add(1, Ordering::SeqCst);
        let mut event_details = Map::new();
        if let (Some(key), Some(detail)) = (event_type.details_key(), detail) {
            event_details.insert(key, detail);
        }
        let event = HistoryEvent {
            timestamp: self.clock.now(),
            event_type,
            id,
            previous_event_id: previous,
            details: event_details,
        };
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).events.push(event);
        id
    }

    /// Writes the events and step records kept since the last flush, in one transaction, and
    /// waits until they are durable.
    ///
    /// The executor flushes before a task is invoked, when a Task, Parallel, Map or Wait state
    /// finishes, before waiting, at the end, and every [`FLUSH_EVERY`] events: nothing outside
    /// the engine (a task, the passing of time) ever depends on unwritten records. Pass, Choice
    /// and Succeed states between two flushes are pure: after a crash they are simply run again.
    pub async fn flush(&self) {
        if let Err(error) = self.flush_as(None, false).await {
            tracing::error!(execution = %self.context.execution_arn, %error, "cannot store history events");
        }
    }

    /// [`Run::flush`], writing the execution record in the same transaction; `starts` marks the
    /// write that starts the execution, which is refused when the record's ARN is stored already.
    /// The caller decides what a failed write means.
    pub fn flush_with(&self, record: ExecutionRecord, starts: bool) -> Commit {
        self.flush_as(Some(record), starts)
    }

    /// Queues what is pending (and `execution`); `starts` marks the batch that starts it.
    fn flush_as(&self, execution: Option<ExecutionRecord>, starts: bool) -> Commit {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.events.is_empty() && pending.steps.is_empty() && execution.is_none() {
            return Commit::nothing();
        }
        let batch = Batch {
            events: std::mem::take(&mut pending.events),
            steps: std::mem::take(&mut pending.steps),
            execution,
            starts_execution: starts,
        };
        // Queued while the lock is held, so that this run's batches reach the store in order.
        self.journal.append(&self.context.execution_arn, batch)
    }

    /// Forgets the step records not written yet (their events are kept).
    pub fn discard_unwritten_steps(&self) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).steps.clear();
    }

    /// Keeps a step record for the next flush; flushes now when `durable` or when enough is kept.
    async fn record_step(&self, key: String, record: StepRecord, durable: bool) {
        let due = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.steps.push((key, record));
            durable || pending.events.len() >= FLUSH_EVERY
        };
        if due {
            self.flush().await;
        }
    }

    /// The id of the last event emitted so far.
    pub fn last_event_id(&self) -> u64 {
        self.next_event_id.load(Ordering::SeqCst) - 1
    }

    /// Runs the top-level machine.
    pub async fn run_top(&self, input: Value, previous: u64) -> MachineOutcome {
        let frame = Frame { key_prefix: String::new(), variables: Variables::new(), previous };
        self.run_machine(&self.definition.machine, input, frame).await
    }

    fn context_for(&self, state: &State, entered: DateTime<Utc>, retry_count: u32) -> Value {
        if self.uses_context {
            let retry_count = handling(state).map(|_| retry_count);
            self.context.for_state(&state.name, entered, retry_count)
        } else {
            Value::Null
        }
    }

    fn run_machine<'a>(&'a self, machine: &'a Machine, input: Value, mut frame: Frame) -> BoxedOutcome<'a> {
        Box::pin(async move {
            let mut current = machine.start_at.clone();
            let mut data = input;
            let mut visits: HashMap<&str, u32> = HashMap::new();
            loop {
                let Some(state) = machine.state(&current) else {
                    return MachineOutcome {
                        result: Err(Failure::new(names::RUNTIME, format!("No state named '{current}'"))),
                        last_event: frame.previous,
                    };
                };
                let visit = visits.entry(state.name.as_str()).or_insert(0);
                let key = format!("{}/{}#{}", frame.key_prefix, state.name, visit);
                *visit += 1;
                if let Some(step) = self.replay.get(&key) {
                    if let Some(assigned) = &step.assigned {
                        frame.variables.extend(assigned.clone());
                    }
                    data = match serde_json::from_str(&step.output) {
                        Ok(output) => output,
                        Err(error) => {
                            let failure = Failure::runtime(format!("The stored output of '{key}' is corrupt: {error}"));
                            return MachineOutcome { result: Err(failure), last_event: frame.previous };
                        }
                    };
                    match &step.next {
                        Some(next) => {
                            current = next.clone();
                            continue;
                        }
                        None => {
                            return MachineOutcome { result: Ok(data), last_event: frame.previous };
                        }
                    }
                }
                let type_name = state.kind.type_name();
                let entered_time = self.clock.now();
                let entered = self.emit(
                    frame.previous,
                    EventType::state_entered(type_name),
                    Some(details::state_entered(&state.name, data.to_string())),
                );
                frame.previous = entered;
                let outcome = self.run_state(state, &data, &mut frame, entered_time, &key).await.and_then(|step| {
                    let text = step.output.to_string();
                    if text.len() > MAX_PAYLOAD_BYTES { Err(data_limit_failure(&state.name)) } else { Ok((step, text)) }
                });
                let (step, output_text) = match outcome {
                    Ok((step, output_text)) => {
                        if !matches!(state.kind, StateKind::Fail(_)) {
                            frame.previous = self.emit(
                                frame.previous,
                                EventType::state_exited(type_name),
                                Some(details::state_exited(&state.name, output_text.clone(), step.assigned.as_ref())),
                            );
                        }
                        (step, Some(output_text))
                    }
                    Err(failure) => {
                        let failure = failure.located(&state.name, entered);
                        match self.catch(state, &data, &failure, &frame, entered_time) {
                            Some(Ok(step)) => (step, None),
                            Some(Err(catch_failure)) => {
                                return MachineOutcome {
                                    result: Err(catch_failure.located(&state.name, entered)),
                                    last_event: frame.previous,
                                };
                            }
                            None => {
                                return MachineOutcome { result: Err(failure), last_event: frame.previous };
                            }
                        }
                    }
                };
                if let Some(assigned) = &step.assigned {
                    frame.variables.extend(assigned.clone());
                }
                let output = output_text.unwrap_or_else(|| step.output.to_string());
                let next = step.next.clone();
                let record = StepRecord { output, next: step.next, assigned: step.assigned };
                data = step.output;
                let durable = !matches!(state.kind, StateKind::Pass(_) | StateKind::Choice(_) | StateKind::Succeed);
                self.record_step(key, record, durable).await;
                match next {
                    Some(next) => current = next,
                    None => {
                        return MachineOutcome { result: Ok(data), last_event: frame.previous };
                    }
                }
            }
        })
    }

    /// Applies the first matching Catch of a state; `None` when nothing catches the failure.
    fn catch(
        &self,
        state: &State,
        raw_input: &Value,
        failure: &Failure,
        frame: &Frame,
        entered_time: DateTime<Utc>,
    ) -> Option<Result<Step, Failure>> {
        let handling = handling(state)?;
        let catcher = handling.catch.iter().find(|c| retry::matches(&c.error_equals, failure))?;
        let error_output = failure.to_error_output();
        let context = self.context_for(state, entered_time, 0);
        let result = (|| {
            let (output, assigned) = match state.query_language {
                QueryLanguage::JsonPath => {
                    let scope = Scope { data: &error_output, context: &context, variables: &frame.variables };
                    let assigned = assign_jsonpath(catcher.assign.as_ref(), &scope)?;
                    let output = apply_result_path(&catcher.result_path, raw_input, error_output.clone())?;
                    (output, assigned)
                }
                QueryLanguage::Jsonata => {
                    let states = json!({"input": raw_input, "context": context, "errorOutput": error_output});
                    let bindings = Bindings { states: &states, variables: &frame.variables };
                    let assigned = assign_jsonata(catcher.assign.as_ref(), &bindings)?;
                    let output = match &catcher.output {
                        Some(template) => evaluate_jsonata_template(template, &bindings, "Output")?,
                        None => error_output.clone(),
                    };
                    (output, assigned)
                }
            };
            Ok(Step { output, next: Some(catcher.next.clone()), assigned })
        })();
        Some(result)
    }

    /// Runs one state (with its retries) from its raw input.
    async fn run_state(
        &self,
        state: &State,
        raw_input: &Value,
        frame: &mut Frame,
        entered_time: DateTime<Utc>,
        key: &str,
    ) -> Result<Step, Failure> {
        let Some(handling) = handling(state) else {
            let context = self.context_for(state, entered_time, 0);
            return self.attempt(state, raw_input, frame, &context, 0, key).await;
        };
        let mut retries_used = vec![0u32; handling.retry.len()];
        let mut retry_count = 0;
        loop {
            let context = self.context_for(state, entered_time, retry_count);
            let failure = match self.attempt(state, raw_input, frame, &context, retry_count, key).await {
                Ok(step) => return Ok(step),
                Err(failure) => failure,
            };
            let Some(index) = handling.retry.iter().position(|r| retry::matches(&r.error_equals, &failure)) else {
                return Err(failure);
            };
            let retrier = &handling.retry[index];
            if retries_used[index] >= retrier.max_attempts {
                return Err(failure);
            }
            let delay = retrier.delay(retries_used[index]);
            retries_used[index] += 1;
            retry_count += 1;
            self.flush().await;
            self.clock.sleep(delay).await;
        }
    }

    /// One attempt of a state.
    async fn attempt(
        &self,
        state: &State,
        raw_input: &Value,
        frame: &mut Frame,
        context: &Value,
        retry_count: u32,
        key: &str,
    ) -> Result<Step, Failure> {
        let flow = DataFlow { state, raw_input, context, variables: &frame.variables };
        let next = match &state.transition {
            Some(Transition::Next(next)) => Some(next.clone()),
            _ => None,
        };
        match &state.kind {
            StateKind::Pass(pass) => {
                if state.query_language == QueryLanguage::Jsonata {
                    return flow.finish(None, None, next);
                }
                let input = flow.effective_input()?;
                let result = match (&pass.parameters, &pass.result) {
                    (Some(parameters), _) => parameters.evaluate(&flow.scope(&input))?,
                    (None, Some(result)) => result.clone(),
                    (None, None) => input.into_owned(),
                };
                flow.finish(Some(result), Some(&pass.result_path), next)
            }
            StateKind::Succeed => flow.finish(None, None, None),
            StateKind::Fail(fail) => Err(flow.fail(fail)?),
            StateKind::Choice(choice) => flow.choose(choice),
            StateKind::Wait(wait_state) => {
                let target = flow.wait_target(&wait_state.until)?;
                let duration = match target {
                    WaitTarget::Duration(d) => d,
                    WaitTarget::Until(until) => (until - self.clock.now()).to_std().unwrap_or(Duration::ZERO),
                };
                if !duration.is_zero() {
                    self.flush().await;
                    self.clock.sleep(duration).await;
                }
                flow.finish(None, None, next)
            }
            StateKind::Task(task) => {
                let payload = flow.payload(task.parameters.as_ref(), task.arguments.as_ref())?;
                let limits = TaskLimits {
                    timeout: flow.seconds(task.timeout_seconds.as_ref(), "TimeoutSeconds")?,
                    heartbeat: flow.seconds(task.heartbeat_seconds.as_ref(), "HeartbeatSeconds")?,
                };
                let result = self.invoke(task, state, payload, limits, &mut frame.previous, retry_count).await?;
                flow.finish(Some(result), Some(&task.handling.result_path), next)
            }
            StateKind::Parallel(parallel) => {
                let payload = flow.payload(parallel.parameters.as_ref(), parallel.arguments.as_ref())?;
                let (result, last) = self.run_parallel(parallel, payload, flow.variables, frame.previous, key).await;
                frame.previous = last;
                let result = result?;
                flow.finish(Some(result), Some(&parallel.handling.result_path), next)
            }
            StateKind::Map(map) => {
                let map = map.as_ref();
                let (result, last) = self.run_map(map, &flow, frame.previous, key, &state.name).await;
                frame.previous = last;
                let result = result?;
                flow.finish(Some(result), Some(&map.handling.result_path), next)
            }
        }
    }

    async fn invoke(
        &self,
        task: &Task,
        state: &State,
        payload: Value,
        limits: TaskLimits,
        previous: &mut u64,
        retry_count: u32,
    ) -> Result<Value, Failure> {
        let target = task.target(&payload).map_err(Failure::runtime)?;
        let region = region_of(&task.resource);
        let (scheduled_type, started_type, prefix, resource_type, resource_name) = match &target {
            TaskTarget::LambdaFunction { .. } => {
                ("LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunction", String::new(), String::new())
            }
            TaskTarget::LambdaInvoke { .. } => {
                ("TaskScheduled", "TaskStarted", "Task", "lambda".to_owned(), "invoke".to_owned())
            }
            TaskTarget::Other { resource } => {
                let (service, action) = service_parts(resource);
                ("TaskScheduled", "TaskStarted", "Task", service, action)
            }
        };
        let is_lambda_function = prefix == "LambdaFunction";
        let scheduled_detail = if is_lambda_function {
            // LambdaFunctionScheduledEventDetails has no heartbeat field.
            let mut d = details::payload("input", payload.to_string());
            d["resource"] = Value::String(task.resource.clone());
            if let Some(timeout) = limits.timeout {
                d["timeoutInSeconds"] = json!(timeout);
            }
            d
        } else {
            let mut d = json!({
                "resourceType": resource_type,
                "resource": resource_name,
                "region": region,
                "parameters": payload.to_string(),
            });
            if let Some(timeout) = limits.timeout {
                d["timeoutInSeconds"] = json!(timeout);
            }
            if let Some(heartbeat) = limits.heartbeat {
                d["heartbeatInSeconds"] = json!(heartbeat);
            }
            d
        };
        *previous = self.emit(*previous, EventType::new(scheduled_type), Some(scheduled_detail));
        let started_detail =
            (!is_lambda_function).then(|| json!({"resourceType": resource_type, "resource": resource_name}));
        *previous = self.emit(*previous, EventType::new(started_type), started_detail);
        let event_payload = match &target {
            TaskTarget::LambdaInvoke { .. } => task::lambda_invoke_event(&payload),
            _ => payload,
        };
        let request = TaskRequest {
            target: target.clone(),
            resource: task.resource.clone(),
            payload: event_payload,
            execution_arn: self.context.execution_arn.clone(),
            state_name: state.name.clone(),
            attempt: retry_count,
        };
        self.flush().await;
        let heartbeat = Heartbeat::new();
        let outcome =
            self.watch_task(self.invoker.invoke_with_heartbeat(request, heartbeat.clone()), limits, &heartbeat).await;
        let with_resource = |mut d: Value| {
            if !is_lambda_function {
                d["resourceType"] = Value::String(resource_type.clone());
                d["resource"] = Value::String(resource_name.clone());
            }
            d
        };
        match outcome {
            TaskEnd::TimedOut { missed_heartbeat } => {
                *previous = self.emit(
                    *previous,
                    EventType::new(format!("{prefix}TimedOut")),
                    Some(with_resource(details::error_cause(Some(names::TIMEOUT), None))),
                );
                Err(Failure::task_timeout(missed_heartbeat))
            }
            TaskEnd::Finished(Err(error)) => {
                *previous = self.emit(
                    *previous,
                    EventType::new(format!("{prefix}Failed")),
                    Some(with_resource(details::error_cause(Some(&error.error), Some(&error.cause)))),
                );
                Err(Failure::new(error.error, error.cause))
            }
            TaskEnd::Finished(Ok(result)) => {
                let result = match target {
                    TaskTarget::LambdaInvoke { .. } => {
                        task::lambda_invoke_result(result, &uuid::Uuid::new_v4().to_string())
                    }
                    _ => result,
                };
                let text = result.to_string();
                if text.len() > MAX_PAYLOAD_BYTES {
                    return Err(data_limit_failure(&state.name));
                }
                *previous = self.emit(
                    *previous,
                    EventType::new(format!("{prefix}Succeeded")),
                    Some(with_resource(details::payload("output", text))),
                );
                Ok(result)
            }
        }
    }

    /// Waits for a task invocation, failing it after `TimeoutSeconds` in all, or after
    /// `HeartbeatSeconds` without a beat.
    async fn watch_task(
        &self,
        invocation: impl Future<Output = Result<Value, TaskError>>,
        limits: TaskLimits,
        heartbeat: &Heartbeat,
    ) -> TaskEnd {
        let timer = |seconds: Option<u64>| async move {
            match seconds {
                Some(seconds) => self.clock.timer(Duration::from_secs(seconds)).await,
                None => std::future::pending::<()>().await,
            }
        };
        let deadline = timer(limits.timeout);
        tokio::pin!(invocation, deadline);
        loop {
            // In this order: a task that ran out of time has failed even if its result is ready;
            // a beat that came before the countdown is looked at restarts it (the next turn of
            // the loop), so that a beat is never missed for having been noticed late.
            tokio::select! {
                biased;
                () = &mut deadline => return TaskEnd::TimedOut { missed_heartbeat: false },
                () = heartbeat.next_beat() => {}
                () = timer(limits.heartbeat) => return TaskEnd::TimedOut { missed_heartbeat: true },
                outcome = &mut invocation => return TaskEnd::Finished(outcome),
            }
        }
    }

    /// Runs a Parallel state's branches; returns the results and the last event id.
    async fn run_parallel(
        &self,
        parallel: &Parallel,
        input: Value,
        variables: &Variables,
        previous: u64,
        key: &str,
    ) -> (Result<Value, Failure>, u64) {
        let started = self.emit(previous, EventType::new("ParallelStateStarted"), None);
        let branches = parallel.branches.iter().enumerate().map(|(i, branch)| {
            let child = Frame { key_prefix: format!("{key}/{i}"), variables: variables.clone(), previous: started };
            self.run_machine(branch, input.clone(), child)
        });
        // The first failing branch fails the state and cancels the others, as on AWS.
        let branches = branches.map(|branch| async move {
            let outcome = branch.await;
            match outcome.result {
                Ok(value) => Ok((value, outcome.last_event)),
                Err(failure) => Err((failure, outcome.last_event)),
            }
        });
        match futures::future::try_join_all(branches).await {
            Ok(outcomes) => {
                let last = outcomes.iter().map(|(_, last)| *last).max().unwrap_or(started);
                let results = outcomes.into_iter().map(|(value, _)| value).collect();
                let last = self.emit(last, EventType::new("ParallelStateSucceeded"), None);
                (Ok(Value::Array(results)), last)
            }
            Err((failure, last)) => {
                let last = self.emit(last, EventType::new("ParallelStateFailed"), None);
                (Err(failure), last)
            }
        }
    }

    /// Runs a Map state's iterations; returns the results and the last event id.
    async fn run_map(
        &self,
        map: &MapState,
        flow: &DataFlow<'_>,
        previous: u64,
        key: &str,
        state_name: &str,
    ) -> (Result<Value, Failure>, u64) {
        let prepared = (|| {
            let input = flow.effective_input()?;
            let items = flow.map_items(map, &input)?;
            let max_concurrency = flow.count(map.max_concurrency.as_ref(), "MaxConcurrency")?;
            let tolerated_count = flow.count(map.tolerated_failure_count.as_ref(), "ToleratedFailureCount")?;
            let tolerated_percentage =
                flow.percentage(map.tolerated_failure_percentage.as_ref(), "ToleratedFailurePercentage")?;
            let selected = items
                .iter()
                .enumerate()
                .map(|(index, item)| flow.select_item(map, &input, index, item))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((selected, max_concurrency, tolerated_count, tolerated_percentage))
        })();
        let (items, max_concurrency, tolerated_count, tolerated_percentage) = match prepared {
            Ok(p) => p,
            Err(failure) => return (Err(failure), previous),
        };
        let total = items.len();
        let started = self.emit(previous, EventType::new("MapStateStarted"), Some(json!({"length": total})));
        let limit = match max_concurrency {
            Some(n) if n > 0 => n as usize,
            _ => total.max(1),
        };
        let variables = flow.variables;
        // Iterations started and not finished: they are the aborted ones if the Map fails.
        let in_flight = Mutex::new(std::collections::BTreeSet::new());
        let in_flight = &in_flight;
        let iterations = items.into_iter().enumerate().map(|(index, item)| {
            in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(index);
            let iteration_started = self.emit(
                started,
                EventType::new("MapIterationStarted"),
                Some(json!({"name": state_name, "index": index})),
            );
            let child = Frame {
                key_prefix: format!("{key}/{index}"),
                variables: variables.clone(),
                previous: iteration_started,
            };
            async move {
                let outcome = self.run_machine(&map.processor, item, child).await;
                in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&index);
                let kind = if outcome.result.is_ok() { "MapIterationSucceeded" } else { "MapIterationFailed" };
                let last = self.emit(
                    outcome.last_event,
                    EventType::new(kind),
                    Some(json!({"name": state_name, "index": index})),
                );
                (index, outcome.result, last)
            }
        });
        let tolerates_failures = tolerated_count.is_some() || tolerated_percentage.is_some();
        // Unordered, so that a failing iteration aborts the others at once; results are placed
        // by index.
        let mut stream = futures::stream::iter(iterations).buffer_unordered(limit);
        let mut results = vec![Value::Null; total];
        let mut failures = 0usize;
        let mut last = started;
        while let Some((index, result, last_event)) = stream.next().await {
            last = last.max(last_event);
            match result {
                Ok(value) => results[index] = value,
                Err(failure) => {
                    failures += 1;
                    if !tolerates_failures {
                        drop(stream);
                        let aborted = std::mem::take(&mut *in_flight.lock().unwrap_or_else(|p| p.into_inner()));
                        for index in aborted {
                            self.emit(
                                last,
                                EventType::new("MapIterationAborted"),
                                Some(json!({"name": state_name, "index": index})),
                            );
                        }
                        let last = self.emit(last, EventType::new("MapStateFailed"), None);
                        return (Err(failure), last);
                    }
                    results[index] = failure.to_error_output();
                }
            }
        }
        let exceeded_count = tolerated_count.is_some_and(|c| failures as u64 > c);
        let exceeded_percentage =
            tolerated_percentage.is_some_and(|p| total > 0 && (failures as f64) * 100.0 / (total as f64) > p);
        let both_given = tolerated_count.is_some() && tolerated_percentage.is_some();
        let exceeded =
            if both_given { exceeded_count && exceeded_percentage } else { exceeded_count || exceeded_percentage };
        if exceeded {
            let last = self.emit(last, EventType::new("MapStateFailed"), None);
            return (
                Err(Failure::new(
                    names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                    "The specified tolerated failure threshold was exceeded",
                )),
                last,
            );
        }
        let last = self.emit(last, EventType::new("MapStateSucceeded"), None);
        (Ok(Value::Array(results)), last)
    }
}

fn handling(state: &State) -> Option<&ResultHandling> {
    match &state.kind {
        StateKind::Task(t) => Some(&t.handling),
        StateKind::Parallel(p) => Some(&p.handling),
        StateKind::Map(m) => Some(&m.handling),
        _ => None,
    }
}

fn data_limit_failure(state: &str) -> Failure {
    Failure::new(
        names::DATA_LIMIT_EXCEEDED,
        format!(
            "The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit."
        ),
    )
}

fn region_of(resource: &str) -> String {
    resource.split(':').nth(3).filter(|r| !r.is_empty()).unwrap_or("us-east-1").to_owned()
}

/// `arn:aws:states:::dynamodb:putItem` → ("dynamodb", "putItem").
fn service_parts(resource: &str) -> (String, String) {
    let parts: Vec<&str> = resource.split(':').collect();
    match parts.as_slice() {
        [_, _, "states", _, _, service, action, ..] => ((*service).to_owned(), (*action).to_owned()),
        _ => (String::new(), resource.to_owned()),
    }
}

/// Applies a JSONPath ResultPath: merge `result` into `raw_input`.
fn apply_result_path(result_path: &OptionalPath, raw_input: &Value, result: Value) -> Result<Value, Failure> {
    match result_path {
        None => Ok(raw_input.clone()),
        Some(path) if path.is_root() => Ok(result),
        Some(path) => {
            path.write(raw_input.clone(), result).map_err(|e| Failure::runtime(format!("Invalid path '{path}' : {e}")))
        }
    }
}

fn assign_jsonpath(assign: Option<&Payload>, scope: &Scope) -> Result<Option<Map<String, Value>>, Failure> {
    match assign {
        Some(Payload::JsonPath(template)) => match template.evaluate(scope)? {
            Value::Object(map) => Ok(Some(map)),
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

fn assign_jsonata(assign: Option<&Payload>, bindings: &Bindings) -> Result<Option<Map<String, Value>>, Failure> {
    match assign {
        Some(Payload::Jsonata(template)) => match evaluate_jsonata_template(template, bindings, "Assign")? {
            Value::Object(map) => Ok(Some(map)),
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

fn jsonata_failure(error: jsonata::JsonataError) -> Failure {
    Failure::about_state(&error.error, error.message)
}

/// Evaluates a JSONata-mode field (every `{% … %}` string inside it); `field` names it in causes.
fn evaluate_jsonata_template(template: &Value, bindings: &Bindings, field: &str) -> Result<Value, Failure> {
    jsonata::evaluate_field(field, template, bindings).map_err(jsonata_failure)
}

/// Evaluates one JSONata expression string for a field.
fn evaluate_jsonata(expression: &str, bindings: &Bindings, field: &str) -> Result<Value, Failure> {
    evaluate_jsonata_template(&Value::String(expression.to_owned()), bindings, field)
}

/// The failure for a JSONata result of the wrong type for its field.
fn unexpected_type(field: &str, expression: &str, expected: &str, actual: &Value) -> Failure {
    jsonata_failure(jsonata::unexpected_type_error(field, expression, expected, actual))
}

/// The data flow of one state attempt.
#[derive(Clone, Copy)]
struct DataFlow<'a> {
    state: &'a State,
    raw_input: &'a Value,
    context: &'a Value,
    variables: &'a Variables,
}

impl<'a> DataFlow<'a> {
    fn scope<'s>(&'s self, data: &'s Value) -> Scope<'s> {
        Scope { data, context: self.context, variables: self.variables }
    }

    fn jsonata_states(&self, result: Option<&Value>) -> Value {
        let mut states = Map::new();
        states.insert("input".into(), self.raw_input.clone());
        states.insert("context".into(), self.context.clone());
        if let Some(result) = result {
            states.insert("result".into(), result.clone());
        }
        Value::Object(states)
    }

    fn is_jsonata(&self) -> bool {
        self.state.query_language == QueryLanguage::Jsonata
    }

    /// JSONPath InputPath.
    fn effective_input(&self) -> Result<Cow<'a, Value>, Failure> {
        match &self.state.input_path {
            None => Ok(Cow::Owned(Value::Object(Map::new()))),
            Some(path) if path.is_root() => Ok(Cow::Borrowed(self.raw_input)),
            Some(path) => self
                .scope(self.raw_input)
                .lookup(path)
                .map(Cow::Owned)
                .map_err(|e| Failure::runtime(format!("Invalid path '{path}' : {e}"))),
        }
    }

    /// The payload for Task/Parallel: Parameters (JSONPath) or Arguments (JSONata).
    fn payload(&self, parameters: Option<&Template>, arguments: Option<&Value>) -> Result<Value, Failure> {
        if self.is_jsonata() {
            match arguments {
                Some(arguments) => {
                    let states = self.jsonata_states(None);
                    let bindings = Bindings { states: &states, variables: self.variables };
                    evaluate_jsonata_template(arguments, &bindings, "Arguments")
                }
                None => Ok(self.raw_input.clone()),
            }
        } else {
            let input = self.effective_input()?;
            match parameters {
                Some(parameters) => parameters.evaluate(&self.scope(&input)),
                None => Ok(input.into_owned()),
            }
        }
    }

    /// Applies result handling, Assign and output processing; `result` is the state's result
    /// (`None` for states without one), `result_path` its ResultPath when the state has one.
    fn finish(
        &self,
        result: Option<Value>,
        result_path: Option<&OptionalPath>,
        next: Option<String>,
    ) -> Result<Step, Failure> {
        self.finish_with(result, result_path, next, self.state.assign.as_ref(), self.state.output.as_ref())
    }

    fn finish_with(
        &self,
        result: Option<Value>,
        result_path: Option<&OptionalPath>,
        next: Option<String>,
        assign: Option<&Payload>,
        output_template: Option<&Value>,
    ) -> Result<Step, Failure> {
        if self.is_jsonata() {
            let states = self.jsonata_states(result.as_ref());
            let bindings = Bindings { states: &states, variables: self.variables };
            let assigned = assign_jsonata(assign, &bindings)?;
            let output = match output_template {
                Some(template) => evaluate_jsonata_template(template, &bindings, "Output")?,
                None => result.unwrap_or_else(|| self.raw_input.clone()),
            };
            return Ok(Step { output, next, assigned });
        }
        let handling = handling(self.state);
        let (combined, assigned) = match result {
            Some(result) => {
                let result = match handling.and_then(|h| h.result_selector.as_ref()) {
                    Some(selector) => selector.evaluate(&self.scope(&result))?,
                    None => result,
                };
                let assigned = assign_jsonpath(assign, &self.scope(&result))?;
                let combined = match result_path {
                    Some(result_path) => apply_result_path(result_path, self.raw_input, result)?,
                    None => result,
                };
                (combined, assigned)
            }
            None => {
                let effective_input = self.effective_input()?;
                let assigned = assign_jsonpath(assign, &self.scope(&effective_input))?;
                (effective_input.into_owned(), assigned)
            }
        };
        let output = match &self.state.output_path {
            None => Value::Object(Map::new()),
            Some(path) if path.is_root() => combined,
            Some(path) => self
                .scope(&combined)
                .lookup(path)
                .map_err(|e| Failure::runtime(format!("Invalid path '{path}' : {e}")))?,
        };
        Ok(Step { output, next, assigned })
    }

    fn choose(&self, choice: &crate::states::choice::Choice) -> Result<Step, Failure> {
        let input = if self.is_jsonata() { Cow::Borrowed(self.raw_input) } else { self.effective_input()? };
        for rule in &choice.rules {
            let matched = match &rule.condition {
                crate::states::choice::Condition::Jsonata(condition) => {
                    let value = match condition {
                        Value::String(expression) => {
                            let states = self.jsonata_states(None);
                            let bindings = Bindings { states: &states, variables: self.variables };
                            evaluate_jsonata(expression, &bindings, "Condition")?
                        }
                        other => other.clone(),
                    };
                    match value {
                        Value::Bool(b) => b,
                        other => {
                            let expression = condition.as_str().unwrap_or_default();
                            return Err(unexpected_type("Condition", expression, "boolean", &other));
                        }
                    }
                }
                condition => condition.evaluate(&self.scope(&input))?,
            };
            if matched {
                let assign = rule.assign.as_ref().or(self.state.assign.as_ref());
                let output = rule.output.as_ref().or(self.state.output.as_ref());
                return self.finish_with(None, None, Some(rule.next.clone()), assign, output);
            }
        }
        match &choice.default {
            Some(default) => self.finish(None, None, Some(default.clone())),
            None => Err(Failure::about_state(
                names::NO_CHOICE_MATCHED,
                "No Choice Rule matched the input and there is no Default",
            )),
        }
    }

    fn fail(&self, fail: &crate::states::fail::Fail) -> Result<Failure, Failure> {
        let resolve = |expr: Option<&Expr<String>>, field: &str| -> Result<Option<String>, Failure> {
            match expr {
                None => Ok(None),
                Some(Expr::Literal(s)) => Ok(Some(s.clone())),
                Some(Expr::Dynamic(template)) => match template.evaluate(&self.scope(self.raw_input))? {
                    Value::String(s) => Ok(Some(s)),
                    other => Ok(Some(other.to_string())),
                },
                Some(Expr::Jsonata(expression)) => {
                    let states = self.jsonata_states(None);
                    let bindings = Bindings { states: &states, variables: self.variables };
                    match evaluate_jsonata(expression, &bindings, field)? {
                        Value::String(s) => Ok(Some(s)),
                        other => Err(unexpected_type(field, expression, "string", &other)),
                    }
                }
            }
        };
        Ok(Failure {
            error: resolve(fail.error.as_ref(), "Error")?,
            cause: resolve(fail.cause.as_ref(), "Cause")?,
            about_state: false,
            missed_heartbeat: false,
        })
    }

    fn wait_target(&self, until: &WaitFor) -> Result<WaitTarget, Failure> {
        let input = if self.is_jsonata() { Cow::Borrowed(self.raw_input) } else { self.effective_input()? };
        match until {
            WaitFor::Seconds(Expr::Literal(s)) => Ok(WaitTarget::Duration(Duration::from_secs(*s))),
            WaitFor::Seconds(Expr::Dynamic(template)) => {
                let value = template.evaluate(&self.scope(&input))?;
                wait::seconds_from_path(&template_source(template), &value)
            }
            WaitFor::Seconds(Expr::Jsonata(expression)) => {
                wait::seconds_from_jsonata(&self.jsonata_value(expression, "Seconds")?)
            }
            WaitFor::Timestamp(Expr::Literal(t)) => wait::timestamp_from_jsonata(&Value::String(t.clone())),
            WaitFor::Timestamp(Expr::Dynamic(template)) => {
                let value = template.evaluate(&self.scope(&input))?;
                wait::timestamp_from_path(&template_source(template), &value)
            }
            WaitFor::Timestamp(Expr::Jsonata(expression)) => {
                wait::timestamp_from_jsonata(&self.jsonata_value(expression, "Timestamp")?)
            }
        }
    }

    fn jsonata_value(&self, expression: &str, field: &str) -> Result<Value, Failure> {
        let states = self.jsonata_states(None);
        let bindings = Bindings { states: &states, variables: self.variables };
        evaluate_jsonata(expression, &bindings, field)
    }

    /// A timeout-like field in seconds.
    fn seconds(&self, expr: Option<&Expr<u64>>, field: &str) -> Result<Option<u64>, Failure> {
        self.count(expr, field)
    }

    /// A non-negative integer field (MaxConcurrency, ToleratedFailureCount, TimeoutSeconds).
    fn count(&self, expr: Option<&Expr<u64>>, field: &str) -> Result<Option<u64>, Failure> {
        match expr {
            None => Ok(None),
            Some(Expr::Literal(n)) => Ok(Some(*n)),
            Some(Expr::Dynamic(template)) => {
                let input = self.effective_input()?;
                let value = template.evaluate(&self.scope(&input))?;
                // AWS also accepts a string holding an integer here.
                let number = value.as_u64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()));
                number.map(Some).ok_or_else(|| {
                    Failure::runtime(format!(
                        "The {field}Path field refers to value \"{value}\" which is not a valid integer: {}",
                        template_source(template)
                    ))
                })
            }
            Some(Expr::Jsonata(expression)) => {
                let value = self.jsonata_value(expression, field)?;
                value.as_u64().map(Some).ok_or_else(|| unexpected_type(field, expression, "integer", &value))
            }
        }
    }

    fn percentage(&self, expr: Option<&Expr<f64>>, field: &str) -> Result<Option<f64>, Failure> {
        let value = match expr {
            None => return Ok(None),
            Some(Expr::Literal(p)) => return Ok(Some(*p)),
            Some(Expr::Dynamic(template)) => {
                let input = self.effective_input()?;
                template.evaluate(&self.scope(&input))?
            }
            Some(Expr::Jsonata(expression)) => self.jsonata_value(expression, field)?,
        };
        value.as_f64().filter(|p| (0.0..=100.0).contains(p)).map(Some).ok_or_else(|| {
            Failure::runtime(format!("The {field} field refers to value \"{value}\" which is not a valid percentage"))
        })
    }

    fn map_items(&self, map: &MapState, input: &Value) -> Result<Vec<Value>, Failure> {
        let (value, source) = match &map.items {
            None if self.is_jsonata() => (self.raw_input.clone(), None),
            None => (input.clone(), None),
            Some(Expr::Literal(v)) if self.is_jsonata() => {
                let states = self.jsonata_states(None);
                let bindings = Bindings { states: &states, variables: self.variables };
                (evaluate_jsonata_template(v, &bindings, "Items")?, None)
            }
            Some(Expr::Literal(v)) => (v.clone(), None),
            Some(Expr::Dynamic(template)) => (template.evaluate(&self.scope(input))?, None),
            Some(Expr::Jsonata(expression)) => (self.jsonata_value(expression, "Items")?, Some(expression.as_str())),
        };
        match value {
            Value::Array(items) => Ok(items),
            other => Err(match source {
                Some(expression) => unexpected_type("Items", expression, "array", &other),
                None => Failure::runtime(format!(
                    "Unable to apply ItemsPath: the value is not an array but {}: {other}",
                    jsonata::type_name(&other)
                )),
            }),
        }
    }

    /// The input of one iteration: ItemSelector (with `$$.Map.Item`) or the item itself.
    fn select_item(&self, map: &MapState, input: &Value, index: usize, item: &Value) -> Result<Value, Failure> {
        if map.item_selector.is_none() && map.item_selector_jsonata.is_none() {
            return Ok(item.clone());
        }
        let mut context = self.context.clone();
        if context.is_null() {
            context = Value::Object(Map::new());
        }
        if let Value::Object(fields) = &mut context {
            fields.insert("Map".into(), json!({"Item": {"Index": index, "Value": item}}));
        }
        match (&map.item_selector, &map.item_selector_jsonata) {
            (Some(selector), _) => {
                selector.evaluate(&Scope { data: input, context: &context, variables: self.variables })
            }
            (None, Some(selector)) => {
                let mut states = Map::new();
                states.insert("input".into(), self.raw_input.clone());
                states.insert("context".into(), context);
                let states = Value::Object(states);
                let bindings = Bindings { states: &states, variables: self.variables };
                evaluate_jsonata_template(selector, &bindings, "ItemSelector")
            }
            (None, None) => Ok(item.clone()),
        }
    }
}

fn template_source(template: &Template) -> String {
    match template {
        Template::Path { path, .. } => path.as_str().to_owned(),
        Template::Call { call, .. } => call.name.clone(),
        _ => String::new(),
    }
}
