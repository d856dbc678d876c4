//! `imgflow replay`: failed executions replayed in bulk — redriven from the state that failed, or
//! restarted with the same input under a new name. Executions whose image was REJECTED are
//! skipped with the reason: a replay cannot fix a bad file.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_sfn::types::{ExecutionRedriveStatus, ExecutionStatus};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::client::sfn::{self, ExecutionFilter};
use crate::client::{Backend, ClientArgs, OutputFormat};
use crate::table;

/// The longest execution name Step Functions accepts.
const MAX_EXECUTION_NAME: usize = 80;

#[derive(Args)]
#[command(group = clap::ArgGroup::new("targets").required(true).multiple(true).args(["executions", "all_failed"]))]
pub struct ReplayArgs {
    /// Executions to replay, by name or ARN.
    executions: Vec<String>,
    /// Replay every FAILED or TIMED_OUT execution (within --since).
    #[arg(long)]
    all_failed: bool,
    /// With --all-failed: only executions started within this long (e.g. 1h, 2days).
    #[arg(long, requires = "all_failed", value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// How executions are replayed.
    #[arg(long, value_enum, default_value_t = ReplayMode::Redrive)]
    mode: ReplayMode,
    /// Show what would be replayed, and what skipped, without replaying anything.
    #[arg(long)]
    dry_run: bool,
    /// Replays in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    concurrency: u32,
    /// Wait for the replayed executions to end, and report how (exit code 1 unless all
    /// SUCCEEDED).
    #[arg(long)]
    wait: bool,
    /// With --wait: how long to wait for the last execution (e.g. 90s, 10m).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ReplayMode {
    /// Resume each execution at the state that failed (RedriveExecution).
    Redrive,
    /// Start a new execution with the same input, under a new name (StartExecution).
    Restart,
}

/// What was done with one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
enum Action {
    Redriven,
    Restarted,
    WouldRedrive,
    WouldRestart,
    Skipped,
    Failed,
}

impl Action {
    fn label(self) -> &'static str {
        match self {
            Action::Redriven => "redriven",
            Action::Restarted => "restarted",
            Action::WouldRedrive => "would redrive",
            Action::WouldRestart => "would restart",
            Action::Skipped => "skipped",
            Action::Failed => "failed",
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReplayOutcome {
    name: String,
    execution_arn: String,
    action: Action,
    /// Why it was skipped, or why the replay failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The new execution of a restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    new_execution_arn: Option<String>,
    /// With --wait: how the replayed execution ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    final_status: Option<String>,
    /// After a redrive: the redrive count that shows the redrive has taken effect.
    #[serde(skip)]
    redrive_count_after: Option<i32>,
}

impl ReplayOutcome {
    fn new(name: String, execution_arn: String, action: Action, reason: Option<String>) -> Self {
        ReplayOutcome {
            name,
            execution_arn,
            action,
            reason,
            new_execution_arn: None,
            final_status: None,
            redrive_count_after: None,
        }
    }
}

pub async fn run(args: ReplayArgs) -> Result<u8> {
    let backend = Backend::connect(&args.client).await?;
    let state_machine_arn = backend.state_machine_arn().await?;
    let targets = targets(&backend, &state_machine_arn, &args).await?;
    if targets.is_empty() {
        eprintln!("nothing to replay: no failed executions{}", if args.since.is_some() { " in that time" } else { "" });
        return Ok(0);
    }
    let progress = ProgressBar::new(targets.len() as u64)
        .with_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").context("the progress bar template")?);
    let deadline = Instant::now() + args.timeout;
    let backend = &backend;
    let args = &args;
    let mut outcomes: Vec<(usize, ReplayOutcome)> = futures::stream::iter(targets.into_iter().enumerate())
        .map(|(index, arn)| {
            let progress = progress.clone();
            async move {
                let mut outcome = replay_one(&backend.sfn, &arn, args).await;
                progress.set_message(format!("{} {}", outcome.action.label(), outcome.name));
                if args.wait && matches!(outcome.action, Action::Redriven | Action::Restarted) {
                    let watched = outcome.new_execution_arn.clone().unwrap_or_else(|| outcome.execution_arn.clone());
                    let final_status =
                        match wait_until_ended(&backend.sfn, &watched, outcome.redrive_count_after, deadline).await {
                            Ok(status) => status,
                            Err(error) => format!("unknown: {error:#}"),
                        };
                    outcome.final_status = Some(final_status);
                }
                progress.inc(1);
                (index, outcome)
            }
        })
        .buffer_unordered(args.concurrency as usize)
        .collect()
        .await;
    progress.finish_and_clear();
    outcomes.sort_by_key(|(index, _)| *index);
    let outcomes: Vec<ReplayOutcome> = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
    match args.client.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&outcomes)?),
        OutputFormat::Table => print!("{}", outcome_table(&outcomes)),
    }
    eprintln!("{}", summary(&outcomes));
    let unsuccessful = outcomes.iter().any(|outcome| {
        outcome.action == Action::Failed || outcome.final_status.as_deref().is_some_and(|s| s != "SUCCEEDED")
    });
    Ok(u8::from(unsuccessful))
}

/// The executions named, then every failed one when asked; each once, in that order.
async fn targets(backend: &Backend, state_machine_arn: &str, args: &ReplayArgs) -> Result<Vec<String>> {
    let mut targets = Vec::new();
    for reference in &args.executions {
        targets.push(sfn::execution_arn(state_machine_arn, reference)?);
    }
    if args.all_failed {
        let since = args
            .since
            .map(|since| chrono::Duration::from_std(since).map(|since| Utc::now() - since))
            .transpose()
            .context("--since is too long")?;
        let filter =
            ExecutionFilter { statuses: vec![ExecutionStatus::Failed, ExecutionStatus::TimedOut], since, limit: None };
        let failed = sfn::list_executions(&backend.sfn, state_machine_arn, &filter).await?;
        // Oldest first: images are replayed in the order they were uploaded.
        targets.extend(failed.into_iter().rev().map(|line| line.execution_arn));
    }
    let mut seen = HashSet::new();
    targets.retain(|arn| seen.insert(arn.clone()));
    Ok(targets)
}

async fn replay_one(sfn: &aws_sdk_sfn::Client, execution_arn: &str, args: &ReplayArgs) -> ReplayOutcome {
    let fallback_name = execution_arn.rsplit(':').next().unwrap_or(execution_arn).to_owned();
    let described = match sfn.describe_execution().execution_arn(execution_arn).send().await {
        Ok(described) => described,
        Err(error) => {
            let error = anyhow::Error::from(aws_sdk_sfn::Error::from(error));
            return ReplayOutcome::new(
                fallback_name,
                execution_arn.to_owned(),
                Action::Failed,
                Some(format!("{error:#}")),
            );
        }
    };
    let name = described.name().map_or(fallback_name, str::to_owned);
    let outcome =
        |action, reason: Option<String>| ReplayOutcome::new(name.clone(), execution_arn.to_owned(), action, reason);
    let status = described.status();
    if !sfn::ended_unsuccessfully(status) {
        return outcome(Action::Skipped, Some(format!("{}: nothing to replay", status.as_str())));
    }
    if let Some(error) = described.error().filter(|error| sfn::is_rejection(error)) {
        let cause = described
            .cause()
            .map(|cause| format!(": {}", table::shorten(&sfn::readable_cause(cause), 160)))
            .unwrap_or_default();
        return outcome(Action::Skipped, Some(format!("REJECTED, a replay cannot fix the upload ({error}{cause})")));
    }
    match args.mode {
        ReplayMode::Redrive => {
            if described.redrive_status() == Some(&ExecutionRedriveStatus::NotRedrivable) {
                let reason = described.redrive_status_reason().unwrap_or("Step Functions says it is not redrivable");
                return outcome(Action::Skipped, Some(format!("not redrivable: {reason} (try --mode restart)")));
            }
            if args.dry_run {
                return outcome(Action::WouldRedrive, None);
            }
            match sfn.redrive_execution().execution_arn(execution_arn).send().await {
                Ok(_) => {
                    let mut redriven = outcome(Action::Redriven, None);
                    redriven.redrive_count_after = Some(described.redrive_count().unwrap_or(0) + 1);
                    redriven
                }
                Err(error) => {
                    let error = anyhow::Error::from(aws_sdk_sfn::Error::from(error));
                    outcome(Action::Failed, Some(format!("RedriveExecution: {error:#}")))
                }
            }
        }
        ReplayMode::Restart => {
            let new_name = restart_name(&name, Utc::now());
            if args.dry_run {
                return outcome(Action::WouldRestart, Some(format!("as {new_name}")));
            }
            let started = sfn
                .start_execution()
                .state_machine_arn(described.state_machine_arn())
                .set_input(described.input().map(str::to_owned))
                .name(&new_name)
                .send()
                .await;
            match started {
                Ok(started) => {
                    let mut restarted = outcome(Action::Restarted, None);
                    restarted.new_execution_arn = Some(started.execution_arn().to_owned());
                    restarted
                }
                Err(error) => {
                    let error = anyhow::Error::from(aws_sdk_sfn::Error::from(error));
                    outcome(Action::Failed, Some(format!("StartExecution: {error:#}")))
                }
            }
        }
    }
}

/// A new execution name for a restart: the original's (without an earlier restart suffix), then
/// `-restart-` and the time to the millisecond, within Step Functions' 80 characters.
fn restart_name(original: &str, now: DateTime<Utc>) -> String {
    let suffix = format!("-restart-{}", now.format("%Y%m%dT%H%M%S%3f"));
    let base = original.split("-restart-").next().unwrap_or(original);
    let kept: String = base.chars().take(MAX_EXECUTION_NAME - suffix.len()).collect();
    format!("{kept}{suffix}")
}

/// Polls until the execution is no longer running (and, after a redrive, shows the redrive);
/// returns its status.
async fn wait_until_ended(
    sfn: &aws_sdk_sfn::Client,
    execution_arn: &str,
    redrive_count_after: Option<i32>,
    deadline: Instant,
) -> Result<String> {
    loop {
        let described = crate::client::sfn::describe(sfn, execution_arn).await?;
        let status = described.status();
        let redrive_seen = redrive_count_after.is_none_or(|count| described.redrive_count().unwrap_or(0) >= count);
        if redrive_seen && !matches!(status, ExecutionStatus::Running | ExecutionStatus::PendingRedrive) {
            return Ok(status.as_str().to_owned());
        }
        if Instant::now() >= deadline {
            bail!("still {} when --timeout ran out", status.as_str());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn outcome_table(outcomes: &[ReplayOutcome]) -> String {
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .map(|outcome| {
            let detail = [
                outcome.new_execution_arn.as_deref().map(|arn| format!("as {}", arn.rsplit(':').next().unwrap_or(arn))),
                outcome.final_status.clone(),
                outcome.reason.clone(),
            ];
            let detail: Vec<String> = detail.into_iter().flatten().collect();
            vec![outcome.name.clone(), outcome.action.label().to_owned(), detail.join(" — ")]
        })
        .collect();
    table::render(&["EXECUTION", "ACTION", "DETAIL"], &rows)
}

/// `20 redriven, 1 skipped` (then, after --wait, how the replays ended).
fn summary(outcomes: &[ReplayOutcome]) -> String {
    let every_action = [
        Action::Redriven,
        Action::Restarted,
        Action::WouldRedrive,
        Action::WouldRestart,
        Action::Skipped,
        Action::Failed,
    ];
    let counts: Vec<String> = every_action
        .iter()
        .map(|action| (action, outcomes.iter().filter(|outcome| outcome.action == *action).count()))
        .filter(|(_, count)| *count > 0)
        .map(|(action, count)| format!("{count} {}", action.label()))
        .collect();
    let mut endings: BTreeMap<&str, usize> = BTreeMap::new();
    for status in outcomes.iter().filter_map(|outcome| outcome.final_status.as_deref()) {
        *endings.entry(status).or_default() += 1;
    }
    let mut text = counts.join(", ");
    if !endings.is_empty() {
        let endings: Vec<String> = endings.iter().map(|(status, count)| format!("{count} {status}")).collect();
        text.push_str(&format!("; then {}", endings.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_names_stay_valid_and_do_not_grow() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T01:02:03.456Z").unwrap().with_timezone(&Utc);
        assert_eq!(restart_name("abc-v1", now), "abc-v1-restart-20261126T010203456");
        let again = restart_name("abc-v1-restart-20261125T000000000", now);
        assert_eq!(again, "abc-v1-restart-20261126T010203456");
        let long = "x".repeat(80);
        let name = restart_name(&long, now);
        assert_eq!(name.chars().count(), MAX_EXECUTION_NAME);
        assert!(name.ends_with("-restart-20261126T010203456"));
    }

    #[test]
    fn the_summary_counts_actions_and_endings() {
        let mut redriven = ReplayOutcome::new("a".into(), "arn:a".into(), Action::Redriven, None);
        redriven.final_status = Some("SUCCEEDED".into());
        let skipped = ReplayOutcome::new("b".into(), "arn:b".into(), Action::Skipped, Some("REJECTED".into()));
        let mut another = ReplayOutcome::new("c".into(), "arn:c".into(), Action::Redriven, None);
        another.final_status = Some("SUCCEEDED".into());
        assert_eq!(summary(&[redriven, skipped, another]), "2 redriven, 1 skipped; then 2 SUCCEEDED");
    }
}
