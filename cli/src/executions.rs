//! `imgflow executions list|show|watch`: the pipeline's executions, their histories and where
//! they failed.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_sfn::types::ExecutionStatus;
use chrono::Utc;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::Value;

use crate::client::sfn::{self, Event, ExecutionFilter, ExecutionLine, StateVisit};
use crate::client::{Backend, ClientArgs, OutputFormat};
use crate::table;

#[derive(Args)]
pub struct ExecutionsArgs {
    #[command(subcommand)]
    command: ExecutionsCommand,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Subcommand)]
enum ExecutionsCommand {
    /// The executions of the pipeline, newest first.
    List(ListArgs),
    /// One execution: its status, where it failed (error and cause), and its history.
    Show(ShowArgs),
    /// A live table of the latest executions, refreshed until Ctrl-C.
    Watch(WatchArgs),
}

/// An execution status as the CLI accepts it (`--status failed`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatusArg {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl From<ExecutionStatusArg> for ExecutionStatus {
    fn from(status: ExecutionStatusArg) -> Self {
        match status {
            ExecutionStatusArg::Running => ExecutionStatus::Running,
            ExecutionStatusArg::Succeeded => ExecutionStatus::Succeeded,
            ExecutionStatusArg::Failed => ExecutionStatus::Failed,
            ExecutionStatusArg::TimedOut => ExecutionStatus::TimedOut,
            ExecutionStatusArg::Aborted => ExecutionStatus::Aborted,
            ExecutionStatusArg::PendingRedrive => ExecutionStatus::PendingRedrive,
        }
    }
}

/// The filter options `list` and `watch` share.
#[derive(Args)]
struct FilterArgs {
    /// Only executions in this status.
    #[arg(long, value_enum, ignore_case = true)]
    status: Option<ExecutionStatusArg>,
    /// Only executions started within this long (e.g. 30m, 1h, 2days).
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// At most this many executions.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

impl FilterArgs {
    fn filter(&self) -> Result<ExecutionFilter> {
        let since = self
            .since
            .map(|since| chrono::Duration::from_std(since).map(|since| Utc::now() - since))
            .transpose()
            .context("--since is too long")?;
        Ok(ExecutionFilter {
            statuses: self.status.map(ExecutionStatus::from).into_iter().collect(),
            since,
            limit: Some(self.limit),
        })
    }
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Args)]
struct ShowArgs {
    /// The execution's name or ARN.
    execution: String,
    /// Also list every history event.
    #[arg(long)]
    events: bool,
}

#[derive(Args)]
struct WatchArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Time between refreshes (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    interval: Duration,
}

pub async fn run(args: ExecutionsArgs) -> Result<u8> {
    let backend = Backend::connect(&args.client).await?;
    let output = args.client.output;
    match args.command {
        ExecutionsCommand::List(list) => {
            let lines =
                sfn::list_executions(&backend.sfn, &backend.state_machine_arn().await?, &list.filter.filter()?).await?;
            match output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&lines)?),
                OutputFormat::Table => print!("{}", execution_table(&lines)),
            }
            Ok(0)
        }
        ExecutionsCommand::Show(show) => {
            let arn = sfn::execution_arn(&backend.state_machine_arn().await?, &show.execution)?;
            let report = ExecutionReport::fetch(&backend, &arn).await?;
            match output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                OutputFormat::Table => print!("{}", report.render(show.events)),
            }
            Ok(0)
        }
        ExecutionsCommand::Watch(watch) => watch_executions(&backend, &watch, output).await,
    }
}

fn execution_table(lines: &[ExecutionLine]) -> String {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|line| {
            vec![
                line.name.clone(),
                line.status.clone(),
                table::time(&line.start_date),
                table::elapsed(&line.start_date, line.stop_date.as_ref()),
                line.redrive_count.to_string(),
            ]
        })
        .collect();
    table::render(&["NAME", "STATUS", "STARTED (UTC)", "DURATION", "REDRIVES"], &rows)
}

/// Everything `show` tells about one execution.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionReport {
    name: String,
    execution_arn: String,
    state_machine_arn: String,
    status: String,
    start_date: chrono::DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_date: Option<chrono::DateTime<Utc>>,
    redrive_count: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    redrive_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redrive_status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<String>,
    /// The state the execution failed in, when it ended unsuccessfully.
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_state: Option<String>,
    input: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<Value>,
    states: Vec<StateVisit>,
    events: Vec<Event>,
}

impl ExecutionReport {
    async fn fetch(backend: &Backend, execution_arn: &str) -> Result<ExecutionReport> {
        let described = sfn::describe(&backend.sfn, execution_arn).await?;
        let events = sfn::history(&backend.sfn, execution_arn).await?;
        let states = sfn::state_visits(&events);
        let failed_state = if sfn::ended_unsuccessfully(described.status()) {
            sfn::failed_state(&states).map(|visit| visit.name.clone())
        } else {
            None
        };
        // Payloads are JSON text; shown as JSON when they parse.
        let json = |text: &str| serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        Ok(ExecutionReport {
            name: described.name().unwrap_or_default().to_owned(),
            execution_arn: described.execution_arn().to_owned(),
            state_machine_arn: described.state_machine_arn().to_owned(),
            status: described.status().as_str().to_owned(),
            start_date: sfn::to_utc(described.start_date()),
            stop_date: described.stop_date().map(sfn::to_utc),
            redrive_count: described.redrive_count().unwrap_or(0),
            redrive_status: described.redrive_status().map(|s| s.as_str().to_owned()),
            redrive_status_reason: described.redrive_status_reason().map(str::to_owned),
            error: described.error().map(str::to_owned),
            cause: described.cause().map(str::to_owned),
            failed_state,
            input: described.input().map_or(Value::Null, json),
            output: described.output().map(json),
            states,
            events,
        })
    }

    /// The uploaded object the execution processes (its input is S3's "Object Created" event).
    fn object(&self) -> Option<String> {
        let detail = self.input.get("detail")?;
        let bucket = detail.pointer("/bucket/name")?.as_str()?;
        let key = detail.pointer("/object/key")?.as_str()?;
        Some(format!("s3://{bucket}/{key}"))
    }

    fn render(&self, with_events: bool) -> String {
        let running = self.status == ExecutionStatus::Running.as_str();
        let mut fields = vec![
            ("Execution", self.name.clone()),
            ("ARN", self.execution_arn.clone()),
            ("Status", self.status.clone()),
            ("Started", format!("{} UTC", table::time(&self.start_date))),
            ("Duration", table::elapsed(&self.start_date, self.stop_date.as_ref())),
        ];
        if let Some(object) = self.object() {
            fields.push(("Object", object));
        }
        let redrives = match (&self.redrive_status, &self.redrive_status_reason) {
            (Some(status), Some(reason)) => format!("{} ({status}: {reason})", self.redrive_count),
            (Some(status), None) => format!("{} ({status})", self.redrive_count),
            (None, _) => self.redrive_count.to_string(),
        };
        fields.push(("Redrives", redrives));
        if let Some(state) = &self.failed_state {
            fields.push(("Failed in", state.clone()));
        }
        if let Some(error) = &self.error {
            let rejected = if sfn::is_rejection(error) { " (REJECTED: a replay cannot fix the upload)" } else { "" };
            fields.push(("Error", format!("{error}{rejected}")));
        }
        if let Some(cause) = &self.cause {
            fields.push(("Cause", sfn::readable_cause(cause)));
        }
        let mut out = table::fields(&fields);
        let rows: Vec<Vec<String>> = self
            .states
            .iter()
            .map(|visit| {
                vec![
                    visit.name.clone(),
                    visit.state_type.clone(),
                    table::elapsed(&visit.entered, visit.exited.as_ref().or(self.stop_date.as_ref())),
                    visit.outcome(running),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table::render(&["STATE", "TYPE", "DURATION", "RESULT"], &rows));
        if with_events {
            let rows: Vec<Vec<String>> = self
                .events
                .iter()
                .map(|event| {
                    let detail = match (&event.error, &event.cause) {
                        (Some(error), Some(cause)) => {
                            format!("{error}: {}", table::shorten(&sfn::readable_cause(cause), 100))
                        }
                        (Some(error), None) => error.clone(),
                        _ => String::new(),
                    };
                    vec![
                        event.id.to_string(),
                        event.kind.clone(),
                        event.state.clone().unwrap_or_default(),
                        table::elapsed(&self.start_date, Some(&event.timestamp)),
                        detail,
                    ]
                })
                .collect();
            out.push('\n');
            out.push_str(&table::render(&["ID", "TYPE", "STATE", "ELAPSED", "ERROR"], &rows));
        }
        out
    }
}

/// Refreshes the table every `interval` until Ctrl-C. On a terminal the screen is redrawn in
/// place; otherwise (a pipe, a file) each refresh is appended, as JSON lines with `--output json`.
async fn watch_executions(backend: &Backend, args: &WatchArgs, output: OutputFormat) -> Result<u8> {
    let state_machine_arn = backend.state_machine_arn().await?;
    let redraw = std::io::stdout().is_terminal() && output == OutputFormat::Table;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let filter = args.filter.filter()?;
        let listing = sfn::list_executions(&backend.sfn, &state_machine_arn, &filter).await;
        let now = Utc::now();
        match (output, listing) {
            (OutputFormat::Json, Ok(lines)) => {
                println!("{}", serde_json::json!({"at": now, "executions": lines}));
            }
            (OutputFormat::Table, Ok(lines)) => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for line in &lines {
                    *counts.entry(line.status.as_str()).or_default() += 1;
                }
                let counts: Vec<String> = counts.iter().map(|(status, n)| format!("{n} {status}")).collect();
                if redraw {
                    print!("\x1b[2J\x1b[H");
                }
                println!(
                    "{} — {} UTC — {} (Ctrl-C to stop)",
                    backend.description,
                    table::time(&now),
                    if counts.is_empty() { "no executions".to_owned() } else { counts.join(", ") }
                );
                println!("{}", execution_table(&lines));
            }
            // A refresh that fails (the twin restarting, a throttle) is shown, and retried.
            (_, Err(error)) => eprintln!("{} UTC: {error:#}", table::time(&now)),
        }
        tokio::select! {
            signal = &mut stop => {
                signal.context("listening for Ctrl-C")?;
                return Ok(0);
            }
            () = tokio::time::sleep(args.interval) => {}
        }
    }
}
