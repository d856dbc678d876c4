//! Step Functions as the commands see it: execution references, listings, histories and what
//! they say about where an execution failed. The same code serves the twin and AWS.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use chrono::{DateTime, Utc};
use imgflow_steps::StepError;
use serde::Serialize;

/// The error names of a REJECTED image: the upload itself is bad, so no replay can fix it.
/// [`StepError::is_rejection`] decides; every variant is listed here so that a new one is
/// classified by it too.
pub fn rejection_errors() -> Vec<&'static str> {
    let every_error = [
        StepError::InvalidImage(String::new()),
        StepError::UnsupportedFormat(String::new()),
        StepError::ImageTooLarge(String::new()),
        StepError::ObjectNotFound(String::new()),
        StepError::TransientError(String::new()),
        StepError::InvalidInput(String::new()),
        StepError::InternalError(String::new()),
    ];
    every_error.iter().filter(|error| error.is_rejection()).map(StepError::asl_name).collect()
}

/// Whether an execution that failed with `error` failed because its image was rejected.
pub fn is_rejection(error: &str) -> bool {
    rejection_errors().contains(&error)
}

/// The execution ARN for `reference`: an ARN as given, or an execution name of `state_machine_arn`
/// (`arn:…:stateMachine:M` → `arn:…:execution:M:NAME`).
pub fn execution_arn(state_machine_arn: &str, reference: &str) -> Result<String> {
    if reference.starts_with("arn:") {
        return Ok(reference.to_owned());
    }
    if reference.is_empty() || reference.contains(':') {
        bail!("{reference:?} is neither an execution ARN nor an execution name");
    }
    let Some((prefix, machine)) = state_machine_arn.split_once(":stateMachine:") else {
        bail!("{state_machine_arn:?} is not a state machine ARN");
    };
    Ok(format!("{prefix}:execution:{machine}:{reference}"))
}

/// A cause as people read it: a Lambda error payload (`{"errorType","errorMessage"}`, what a
/// Fail state's CausePath passes on) shows its message.
pub fn readable_cause(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|payload| payload.get("errorMessage").and_then(serde_json::Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| cause.to_owned())
}

/// Whether an execution in this status has ended without succeeding (and so may be replayed).
pub fn ended_unsuccessfully(status: &ExecutionStatus) -> bool {
    matches!(status, ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted)
}

/// An SDK timestamp as a chrono one.
pub fn to_utc(time: &aws_sdk_sfn::primitives::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos()).unwrap_or_default()
}

/// One line of ListExecutions.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionLine {
    pub name: String,
    pub execution_arn: String,
    pub status: String,
    pub start_date: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_date: Option<DateTime<Utc>>,
    pub redrive_count: i32,
}

/// Which executions a listing returns.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only executions in one of these statuses (all when empty).
    pub statuses: Vec<ExecutionStatus>,
    /// Only executions started at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (per status).
    pub limit: Option<usize>,
}

/// The executions of `state_machine_arn` that `filter` selects, newest first.
pub async fn list_executions(
    sfn: &aws_sdk_sfn::Client,
    state_machine_arn: &str,
    filter: &ExecutionFilter,
) -> Result<Vec<ExecutionLine>> {
    let statuses: Vec<Option<&ExecutionStatus>> =
        if filter.statuses.is_empty() { vec![None] } else { filter.statuses.iter().map(Some).collect() };
    let mut lines = Vec::new();
    for status in statuses {
        let mut pages = sfn
            .list_executions()
            .state_machine_arn(state_machine_arn)
            .set_status_filter(status.cloned())
            .max_results(100)
            .into_paginator()
            .send();
        let mut taken = 0;
        'pages: while let Some(page) = pages.next().await {
            let page = page.with_context(|| format!("listing the executions of {state_machine_arn}"))?;
            for item in page.executions() {
                let start_date = to_utc(item.start_date());
                // Newest first: everything after the first older one is older too.
                if filter.since.is_some_and(|since| start_date < since) || filter.limit.is_some_and(|l| taken >= l) {
                    break 'pages;
                }
                taken += 1;
                lines.push(ExecutionLine {
                    name: item.name().to_owned(),
                    execution_arn: item.execution_arn().to_owned(),
                    status: item.status().as_str().to_owned(),
                    start_date,
                    stop_date: item.stop_date().map(to_utc),
                    redrive_count: item.redrive_count().unwrap_or(0),
                });
            }
        }
    }
    lines.sort_by_key(|line| std::cmp::Reverse(line.start_date));
    Ok(lines)
}

/// A history event, reduced to what the commands show.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: i64,
    pub previous_event_id: i64,
    pub timestamp: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    /// The state a `*StateEntered` / `*StateExited` event names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl Event {
    fn from_sdk(event: &HistoryEvent) -> Event {
        let state = event
            .state_entered_event_details()
            .map(|details| details.name().to_owned())
            .or_else(|| event.state_exited_event_details().map(|details| details.name().to_owned()));
        let failure = [
            event.task_failed_event_details().map(|d| (d.error(), d.cause())),
            event.task_timed_out_event_details().map(|d| (d.error(), d.cause())),
            event.task_start_failed_event_details().map(|d| (d.error(), d.cause())),
            event.task_submit_failed_event_details().map(|d| (d.error(), d.cause())),
            event.lambda_function_failed_event_details().map(|d| (d.error(), d.cause())),
            event.lambda_function_timed_out_event_details().map(|d| (d.error(), d.cause())),
            event.lambda_function_start_failed_event_details().map(|d| (d.error(), d.cause())),
            event.lambda_function_schedule_failed_event_details().map(|d| (d.error(), d.cause())),
            event.activity_failed_event_details().map(|d| (d.error(), d.cause())),
            event.activity_timed_out_event_details().map(|d| (d.error(), d.cause())),
            event.execution_failed_event_details().map(|d| (d.error(), d.cause())),
            event.execution_timed_out_event_details().map(|d| (d.error(), d.cause())),
            event.execution_aborted_event_details().map(|d| (d.error(), d.cause())),
        ]
        .into_iter()
        .flatten()
        .next();
        Event {
            id: event.id(),
            previous_event_id: event.previous_event_id(),
            timestamp: to_utc(event.timestamp()),
            kind: event.r#type().as_str().to_owned(),
            state,
            error: failure.and_then(|(error, _)| error.map(str::to_owned)),
            cause: failure.and_then(|(_, cause)| cause.map(str::to_owned)),
        }
    }

    /// A failed attempt of a Task (retried, caught, or the end of the execution).
    fn is_failed_attempt(&self) -> bool {
        let kind = self.kind.as_str();
        ["Task", "LambdaFunction", "Activity"].iter().any(|prefix| kind.starts_with(prefix))
            && (kind.ends_with("Failed") || kind.ends_with("TimedOut"))
    }

    fn is_successful_attempt(&self) -> bool {
        matches!(self.kind.as_str(), "TaskSucceeded" | "LambdaFunctionSucceeded" | "ActivitySucceeded")
    }
}

/// DescribeExecution, with the ARN in the error.
pub async fn describe(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
) -> Result<aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput> {
    sfn.describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(aws_sdk_sfn::Error::from)
        .with_context(|| format!("describing {execution_arn}"))
}

/// The whole history of an execution, oldest first.
pub async fn history(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut pages = sfn.get_execution_history().execution_arn(execution_arn).max_results(1000).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("reading the history of {execution_arn}"))?;
        events.extend(page.events().iter().map(Event::from_sdk));
    }
    Ok(events)
}

/// One visit of a state, as the history tells it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateVisit {
    pub name: String,
    /// `Task`, `Parallel`, `Fail`, … (from the event type).
    pub state_type: String,
    pub entered: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exited: Option<DateTime<Utc>>,
    /// Attempts that failed (each retry follows one).
    pub failed_attempts: u32,
    /// The last attempt failed: when the state still exited, its error was caught.
    #[serde(skip)]
    last_attempt_failed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_cause: Option<String>,
}

impl StateVisit {
    /// A Parallel or Map: its branches' states run inside it.
    fn is_container(&self) -> bool {
        matches!(self.state_type.as_str(), "Parallel" | "Map")
    }

    /// What happened to the state, in a few words.
    pub fn outcome(&self, execution_running: bool) -> String {
        let retried = match self.failed_attempts {
            0 => String::new(),
            1 => " after 1 failed attempt".to_owned(),
            n => format!(" after {n} failed attempts"),
        };
        match (self.exited, self.last_attempt_failed) {
            (Some(_), true) => format!("caught {}", self.last_error.as_deref().unwrap_or("an error")),
            (Some(_), false) => format!("succeeded{retried}"),
            (None, _) if execution_running => format!("running{retried}"),
            (None, _) => match &self.last_error {
                Some(error) => format!("failed: {error}{retried}"),
                // A Fail state, or a Parallel or Map whose branch failed.
                None if self.state_type == "Fail" || self.is_container() => "failed".to_owned(),
                // Cut short by a failure elsewhere (a sibling branch).
                None => "aborted".to_owned(),
            },
        }
    }
}

/// Every state visit, in the order the states were entered.
pub fn state_visits(events: &[Event]) -> Vec<StateVisit> {
    let mut visits: Vec<StateVisit> = Vec::new();
    // Events chain to their state's entered event through previousEventId.
    let mut visit_of_event: HashMap<i64, usize> = HashMap::new();
    for event in events {
        if let (Some(state_type), Some(name)) = (event.kind.strip_suffix("StateEntered"), &event.state) {
            // A state left without a `*StateExited` event (a caught error, as the twin records
            // it) ends when the next state is entered. Branches entered from a Parallel or Map
            // leave it running.
            if let Some(previous) = visit_of_event.get(&event.previous_event_id).map(|&index| &mut visits[index])
                && previous.exited.is_none()
                && !previous.is_container()
            {
                previous.exited = Some(event.timestamp);
            }
            visit_of_event.insert(event.id, visits.len());
            visits.push(StateVisit {
                name: name.clone(),
                state_type: state_type.to_owned(),
                entered: event.timestamp,
                exited: None,
                failed_attempts: 0,
                last_attempt_failed: false,
                last_error: None,
                last_cause: None,
            });
            continue;
        }
        // Execution-level events (ExecutionFailed, ExecutionRedriven…) belong to no state: a
        // redrive's first state must not close the visit that failed.
        let visit =
            visit_of_event.get(&event.previous_event_id).copied().filter(|_| !event.kind.starts_with("Execution"));
        if let Some(visit) = visit {
            visit_of_event.insert(event.id, visit);
        }
        if event.kind.ends_with("StateExited") {
            let open = visits.iter_mut().rev().find(|v| v.exited.is_none() && Some(&v.name) == event.state.as_ref());
            if let Some(open) = open {
                open.exited = Some(event.timestamp);
            }
        } else if let Some(visit) = visit.map(|index| &mut visits[index]) {
            if event.is_failed_attempt() {
                visit.failed_attempts += 1;
                visit.last_attempt_failed = true;
                visit.last_error.clone_from(&event.error);
                visit.last_cause.clone_from(&event.cause);
            } else if event.is_successful_attempt() {
                visit.last_attempt_failed = false;
            }
        }
    }
    visits
}

/// The state an ended, unsuccessful execution failed in: its last state that never exited,
/// preferring the innermost one (a Task inside a Parallel over the Parallel itself).
pub fn failed_state(visits: &[StateVisit]) -> Option<&StateVisit> {
    let unfinished = || visits.iter().rev().filter(|visit| visit.exited.is_none());
    unfinished().find(|visit| !visit.is_container()).or_else(|| unfinished().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejections_are_the_permanent_errors_the_state_machine_catches() {
        let definition: serde_json::Value =
            serde_json::from_str(include_str!("../../../statemachine/image-pipeline.asl.json")).unwrap();
        let caught = &definition["States"]["Validate"]["Catch"][0];
        assert_eq!(caught["Next"], "RecordRejected");
        let mut asl_list: Vec<&str> =
            caught["ErrorEquals"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
        let mut ours = rejection_errors();
        asl_list.sort_unstable();
        ours.sort_unstable();
        assert_eq!(ours, asl_list);
        assert!(is_rejection("InvalidImage"));
        assert!(!is_rejection("TransientError"));
        assert!(!is_rejection("States.Timeout"));
    }

    #[test]
    fn names_become_arns_of_the_state_machine() {
        let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:imgflow-image-pipeline";
        assert_eq!(
            execution_arn(machine, "abc-1").unwrap(),
            "arn:aws:states:us-east-1:123456789012:execution:imgflow-image-pipeline:abc-1"
        );
        let arn = "arn:aws:states:eu-west-1:1:execution:m:x";
        assert_eq!(execution_arn(machine, arn).unwrap(), arn);
        assert!(execution_arn(machine, "").is_err());
        assert!(execution_arn(machine, "a:b").is_err());
        assert!(execution_arn("not-an-arn", "x").is_err());
    }

    fn event(id: i64, previous: i64, kind: &str, state: Option<&str>, error: Option<&str>) -> Event {
        Event {
            id,
            previous_event_id: previous,
            timestamp: DateTime::from_timestamp(1_700_000_000 + id, 0).unwrap(),
            kind: kind.to_owned(),
            state: state.map(str::to_owned),
            error: error.map(str::to_owned),
            cause: error.map(|e| format!("{e} happened")),
        }
    }

    /// Validate succeeds; in the Parallel, ReadExif succeeds and Resize fails twice (one retry).
    fn failed_in_resize() -> Vec<Event> {
        vec![
            event(1, 0, "ExecutionStarted", None, None),
            event(2, 1, "TaskStateEntered", Some("Validate"), None),
            event(3, 2, "LambdaFunctionScheduled", None, None),
            event(4, 3, "LambdaFunctionStarted", None, None),
            event(5, 4, "LambdaFunctionSucceeded", None, None),
            event(6, 5, "TaskStateExited", Some("Validate"), None),
            event(7, 6, "ParallelStateEntered", Some("Analyse"), None),
            event(8, 7, "ParallelStateStarted", None, None),
            event(9, 8, "TaskStateEntered", Some("ReadExif"), None),
            event(10, 8, "TaskStateEntered", Some("Resize"), None),
            event(11, 9, "LambdaFunctionScheduled", None, None),
            event(12, 10, "LambdaFunctionScheduled", None, None),
            event(13, 11, "LambdaFunctionSucceeded", None, None),
            event(14, 12, "LambdaFunctionFailed", None, Some("TransientError")),
            event(15, 13, "TaskStateExited", Some("ReadExif"), None),
            event(16, 14, "LambdaFunctionScheduled", None, None),
            event(17, 16, "LambdaFunctionFailed", None, Some("TransientError")),
            event(18, 17, "ParallelStateFailed", None, None),
            event(19, 18, "ExecutionFailed", None, Some("TransientError")),
        ]
    }

    #[test]
    fn a_failed_branch_task_is_the_failed_state() {
        let visits = state_visits(&failed_in_resize());
        let names: Vec<&str> = visits.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["Validate", "Analyse", "ReadExif", "Resize"]);
        assert_eq!(visits[0].outcome(false), "succeeded");
        assert_eq!(visits[2].outcome(false), "succeeded");
        let resize = &visits[3];
        assert_eq!(resize.failed_attempts, 2);
        assert_eq!(resize.outcome(false), "failed: TransientError after 2 failed attempts");
        assert_eq!(resize.outcome(true), "running after 2 failed attempts");
        assert_eq!(failed_state(&visits).map(|v| v.name.as_str()), Some("Resize"));
        assert_eq!(visits[1].outcome(false), "failed");
        // A sibling branch cut short by the failure.
        let unfinished_sibling: Vec<Event> = failed_in_resize().into_iter().filter(|e| e.id != 15).collect();
        assert_eq!(state_visits(&unfinished_sibling)[2].outcome(false), "aborted");
    }

    #[test]
    fn a_caught_rejection_fails_in_the_fail_state() {
        let events = vec![
            event(1, 0, "ExecutionStarted", None, None),
            event(2, 1, "TaskStateEntered", Some("Validate"), None),
            event(3, 2, "LambdaFunctionScheduled", None, None),
            event(4, 3, "LambdaFunctionFailed", None, Some("InvalidImage")),
            event(5, 4, "TaskStateExited", Some("Validate"), None),
            event(6, 5, "TaskStateEntered", Some("RecordRejected"), None),
            event(7, 6, "LambdaFunctionScheduled", None, None),
            event(8, 7, "LambdaFunctionSucceeded", None, None),
            event(9, 8, "TaskStateExited", Some("RecordRejected"), None),
            event(10, 9, "FailStateEntered", Some("Rejected"), None),
            event(11, 10, "ExecutionFailed", None, Some("InvalidImage")),
        ];
        let visits = state_visits(&events);
        assert_eq!(visits[0].outcome(false), "caught InvalidImage");
        assert_eq!(visits[1].outcome(false), "succeeded");
        assert_eq!(failed_state(&visits).map(|v| v.name.as_str()), Some("Rejected"));
    }

    #[test]
    fn a_state_left_without_an_exit_event_was_caught() {
        // The twin records no TaskStateExited when a Catch moves on.
        let events = vec![
            event(1, 0, "ExecutionStarted", None, None),
            event(2, 1, "TaskStateEntered", Some("Validate"), None),
            event(3, 2, "LambdaFunctionScheduled", None, None),
            event(4, 3, "LambdaFunctionFailed", None, Some("InvalidImage")),
            event(5, 4, "TaskStateEntered", Some("RecordRejected"), None),
            event(6, 5, "LambdaFunctionScheduled", None, None),
            event(7, 6, "LambdaFunctionSucceeded", None, None),
            event(8, 7, "TaskStateExited", Some("RecordRejected"), None),
            event(9, 8, "FailStateEntered", Some("Rejected"), None),
            event(10, 9, "ExecutionFailed", None, Some("InvalidImage")),
        ];
        let visits = state_visits(&events);
        assert_eq!(visits[0].outcome(false), "caught InvalidImage");
        assert_eq!(visits[0].exited, Some(events[4].timestamp));
        assert_eq!(failed_state(&visits).map(|v| v.name.as_str()), Some("Rejected"));
    }

    #[test]
    fn lambda_error_payloads_read_as_their_message() {
        assert_eq!(readable_cause(r#"{"errorType":"InvalidImage","errorMessage":"truncated"}"#), "truncated");
        assert_eq!(readable_cause("plain words"), "plain words");
        assert_eq!(readable_cause(r#"{"other":1}"#), r#"{"other":1}"#);
    }

    #[test]
    fn a_redrive_visits_the_failed_state_again() {
        let mut events = failed_in_resize();
        events.extend([
            event(20, 19, "ExecutionRedriven", None, None),
            event(21, 20, "ParallelStateEntered", Some("Analyse"), None),
            event(22, 21, "ParallelStateStarted", None, None),
            event(23, 22, "TaskStateEntered", Some("Resize"), None),
            event(24, 23, "LambdaFunctionScheduled", None, None),
            event(25, 24, "LambdaFunctionSucceeded", None, None),
            event(26, 25, "TaskStateExited", Some("Resize"), None),
            event(27, 26, "ParallelStateSucceeded", None, None),
            event(28, 27, "ParallelStateExited", Some("Analyse"), None),
        ]);
        let visits = state_visits(&events);
        let last = visits.last().unwrap();
        assert_eq!((last.name.as_str(), last.outcome(false)), ("Resize", "succeeded".to_owned()));
        // The first run's visits keep their failure.
        assert_eq!(visits[3].outcome(false), "failed: TransientError after 2 failed attempts");
    }
}
