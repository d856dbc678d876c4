//! Redrive: which executions can be redriven, following RedriveExecution's rules.
//!
//! The restart itself replays the execution through its step records (see
//! [`crate::store::StepRecord`]): states that finished are not run again, so the run resumes at
//! the states that did not succeed — inside Map and Parallel, only the failed iterations and
//! branches run again.

use chrono::{DateTime, Duration, Utc};

use crate::history::HistoryEvent;
use crate::store::{ExecutionRecord, ExecutionStatus};

/// How long after it ended an execution can be redriven.
pub const REDRIVE_PERIOD_DAYS: i64 = 14;

/// The history-size limit past which AWS refuses to redrive.
pub const MAX_HISTORY_EVENTS: usize = 25_000;

/// Checks an execution can be redriven; the error is AWS's reason.
pub fn check_redrivable(record: &ExecutionRecord, events: &[HistoryEvent], now: DateTime<Utc>) -> Result<(), String> {
    match record.status {
        ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Aborted => {}
        status => {
            return Err(format!("Execution with status {status} cannot be redriven: {}", record.execution_arn));
        }
    }
    if let Some(stopped) = record.stop_date
        && now - stopped > Duration::days(REDRIVE_PERIOD_DAYS)
    {
        return Err(format!(
            "Execution can no longer be redriven: the redrive period of {REDRIVE_PERIOD_DAYS} days has passed: {}",
            record.execution_arn
        ));
    }
    if events.len() >= MAX_HISTORY_EVENTS {
        return Err(format!(
            "Execution has reached the maximum number of history events and cannot be redriven: {}",
            record.execution_arn
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: ExecutionStatus, stopped_days_ago: i64) -> ExecutionRecord {
        let now = Utc::now();
        ExecutionRecord {
            execution_arn: "arn:e".into(),
            state_machine_arn: "arn:sm".into(),
            name: "e".into(),
            status,
            input: "{}".into(),
            output: None,
            error: None,
            cause: None,
            start_date: now,
            stop_date: Some(now - Duration::days(stopped_days_ago)),
            redrive_count: 0,
            redrive_date: None,
        }
    }

    #[test]
    fn only_recent_failures_are_redrivable() {
        let now = Utc::now();
        assert!(check_redrivable(&record(ExecutionStatus::Failed, 1), &[], now).is_ok());
        assert!(check_redrivable(&record(ExecutionStatus::Aborted, 1), &[], now).is_ok());
        assert!(check_redrivable(&record(ExecutionStatus::Succeeded, 1), &[], now).is_err());
        assert!(check_redrivable(&record(ExecutionStatus::Failed, 15), &[], now).is_err());
    }
}
