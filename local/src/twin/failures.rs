//! The EventBridge rule on "Step Functions Execution Status Change" (FAILED, TIMED_OUT, ABORTED)
//! that invokes write-metadata in its FAILED mode, as the template deploys it on AWS.
//!
//! EventBridge delivers at least once and retries; here every delivery is logged in SQLite, and
//! whatever was not delivered (a crash, a lagging listener, a failing write) is delivered again
//! at start-up and every [`RECONCILE_EVERY`]. The write rule of the metadata store makes repeated
//! deliveries harmless.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imgflow_engine::{ExecutionRecord, ExecutionStatus};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::pipeline::Pipeline;
use crate::functions::StepFunctions;

pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);

const ENDED_BADLY: [ExecutionStatus; 3] =
    [ExecutionStatus::Failed, ExecutionStatus::TimedOut, ExecutionStatus::Aborted];

#[derive(Debug, thiserror::Error)]
#[error("the delivery log {path}: {source}")]
pub struct DeliveryLogError {
    path: String,
    source: rusqlite::Error,
}

/// Which status changes were delivered: one row per execution and redrive.
pub struct DeliveryLog {
    connection: Mutex<Connection>,
}

impl DeliveryLog {
    pub fn open(path: &Path) -> Result<DeliveryLog, DeliveryLogError> {
        let error = |source| DeliveryLogError { path: path.display().to_string(), source };
        let connection = Connection::open(path).map_err(error)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE IF NOT EXISTS failure_deliveries (
                     execution_arn TEXT NOT NULL,
                     redrive_count INTEGER NOT NULL,
                     delivered_at TEXT NOT NULL,
                     PRIMARY KEY (execution_arn, redrive_count)
                 );",
            )
            .map_err(error)?;
        Ok(DeliveryLog { connection: Mutex::new(connection) })
    }

    fn delivered(&self, execution: &ExecutionRecord) -> rusqlite::Result<bool> {
        self.lock()
            .query_row(
                "SELECT 1 FROM failure_deliveries WHERE execution_arn = ?1 AND redrive_count = ?2",
                params![execution.execution_arn, execution.redrive_count],
                |_| Ok(()),
            )
            .optional()
            .map(|row| row.is_some())
    }

    fn record(&self, execution: &ExecutionRecord) -> rusqlite::Result<()> {
        self.lock().execute(
            "INSERT OR IGNORE INTO failure_deliveries (execution_arn, redrive_count, delivered_at) VALUES (?1, ?2, ?3)",
            params![execution.execution_arn, execution.redrive_count, chrono::Utc::now().to_rfc3339()],
        )?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The rule and its target.
pub struct FailureRule {
    pub pipeline: Arc<Pipeline>,
    pub functions: Arc<StepFunctions>,
    pub log: DeliveryLog,
}

impl FailureRule {
    /// Follows the engine's status changes until `stop`; delivers the failures, and catches up
    /// on anything missed at start and periodically.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut changes = self.pipeline.engine().subscribe();
        self.reconcile().await;
        let mut timer = tokio::time::interval(RECONCILE_EVERY);
        timer.tick().await;
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Ok(change) => self.on_change(&change.execution).await,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "status changes came faster than they were followed; catching up");
                        self.reconcile().await;
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = timer.tick() => self.reconcile().await,
                _ = stop.changed() => break,
            }
        }
    }

    async fn on_change(&self, execution: &ExecutionRecord) {
        if execution.state_machine_arn != self.pipeline.state_machine_arn() {
            return;
        }
        self.pipeline.observe(execution);
        if ENDED_BADLY.contains(&execution.status) {
            self.deliver(execution).await;
        }
    }

    /// Lists the running executions again and delivers every undelivered failure.
    pub async fn reconcile(&self) {
        let engine = self.pipeline.engine();
        let arn = self.pipeline.state_machine_arn();
        let mut listed = Vec::new();
        for status in [ExecutionStatus::Running].into_iter().chain(ENDED_BADLY) {
            let mut token = None;
            loop {
                match engine.list_executions(arn, Some(status), Some(1000), token.as_deref()) {
                    Ok(page) => {
                        listed.extend(page.executions);
                        token = page.next_token;
                        if token.is_none() {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot list executions to catch up on status changes");
                        return;
                    }
                }
            }
        }
        self.pipeline.clear();
        for execution in &listed {
            // The record listed may be older than the engine's own state: ask again.
            let current = engine.describe_execution(&execution.execution_arn).unwrap_or_else(|_| execution.clone());
            self.pipeline.observe(&current);
            if ENDED_BADLY.contains(&current.status) {
                self.deliver(&current).await;
            }
        }
    }

    async fn deliver(&self, execution: &ExecutionRecord) {
        match self.log.delivered(execution) {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) => {
                tracing::error!(execution = %execution.execution_arn, %error, "cannot read the delivery log");
                return;
            }
        }
        let event = status_change_event(execution);
        match self.functions.call("write-metadata", event).await {
            Ok(_) => {
                if let Err(error) = self.log.record(execution) {
                    tracing::error!(execution = %execution.execution_arn, %error, "cannot write the delivery log");
                }
                tracing::info!(execution = %execution.execution_arn, status = ?execution.status, "image marked FAILED");
            }
            Err(error) => {
                tracing::warn!(execution = %execution.execution_arn, %error, "write-metadata (FAILED mode) failed; retried later");
            }
        }
    }
}

fn millis(date: chrono::DateTime<chrono::Utc>) -> i64 {
    date.timestamp_millis()
}

/// The "Step Functions Execution Status Change" event EventBridge sends for an execution.
pub fn status_change_event(execution: &ExecutionRecord) -> Value {
    let parts: Vec<&str> = execution.execution_arn.split(':').collect();
    let (region, account) = (parts.get(3).copied().unwrap_or_default(), parts.get(4).copied().unwrap_or_default());
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": account,
        "time": execution.stop_date.unwrap_or_else(chrono::Utc::now).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": region,
        "resources": [execution.execution_arn],
        "detail": {
            "executionArn": execution.execution_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": execution.status.as_str(),
            "startDate": millis(execution.start_date),
            "stopDate": execution.stop_date.map(millis),
            "input": execution.input,
            "output": execution.output,
            "error": execution.error,
            "cause": execution.cause,
            "redriveCount": execution.redrive_count,
        }
    })
}
