//! The Step Functions endpoint alone, as `../shared/asl-conformance/tools/speed/speed.py` measures
//! its burst test: EXECUTIONS executions of the 5-state Pass/Choice machine `small5.json` are
//! started one after the other through aws-sdk-sfn; the time runs from the first StartExecution
//! to the moment the client has seen the last one SUCCEEDED. The endpoint is the twin's (`imgflow
//! serve` in a temporary directory, real clock): its router, its engine persisting to SQLite
//! (group commit, WAL). Issue 4's target: ≥ 2 000 executions/s.
//!
//! The client sees the executions end in one of two ways, each measured in its own bursts:
//! - `ListExecutions`: it lists the machine's RUNNING executions until there are none (one
//!   request per polling round, as a user watching a batch would), then checks every execution
//!   with DescribeExecution after the clock has stopped;
//! - `DescribeExecution`: it polls each execution until it has ended, as speed.py does, which
//!   doubles the requests and makes the client's own SDK work a large part of what is timed.
//!
//! Either way every execution must have SUCCEEDED with the expected output.
//!
//! Client and server share the process (one tokio runtime), so the figures per CPU-second
//! include the SDK's own work (signing, HTTP) as well as the server's.
//!
//! `cargo bench -p imgflow-tests --bench sfn_endpoint [-- EXECUTIONS [ROUNDS [CLIENTS]]]`:
//! ROUNDS (default 5) bursts of EXECUTIONS (default 200) for each way of watching, started by
//! CLIENTS concurrent callers (default 1: strictly one after the other) sharing one SDK client
//! and its keep-alive connections.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use imgflow_engine::RealClock;
use imgflow_tests::process_cpu_time;
use imgflow_tests::twin::TestTwin;
use serde_json::{Value, json};

const SPEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/asl-conformance/tools/speed");

/// Issue 4's target for this workload.
const TARGET_EXECUTIONS_PER_SECOND: f64 = 2000.0;

/// The pause between two polling rounds while executions are still running.
const POLL: Duration = Duration::from_millis(1);

/// Executions of the warm-up burst.
const WARM_UP_EXECUTIONS: usize = 20;

/// A burst gives up after this long.
const BURST_TIMEOUT: Duration = Duration::from_secs(120);

/// How the client learns that the executions have ended.
#[derive(Clone, Copy, Debug)]
enum Watch {
    ListExecutions,
    DescribeExecution,
}

struct Burst {
    elapsed: Duration,
    all_started: Duration,
    cpu: Option<Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let mut number = |name: &str, default: usize| -> anyhow::Result<usize> {
        Ok(args.next().map(|a| a.parse()).transpose().context(name.to_owned())?.unwrap_or(default).max(1))
    };
    let executions = number("EXECUTIONS", 200)?;
    let rounds = number("ROUNDS", 5)?;
    let clients = number("CLIENTS", 1)?;
    let dir = Path::new(SPEED);
    let (Ok(definition), Ok(input)) =
        (std::fs::read_to_string(dir.join("small5.json")), std::fs::read_to_string(dir.join("small5.input.json")))
    else {
        println!("skipped: the speed workloads are not at {SPEED}");
        return Ok(());
    };
    let expected = json!({"x": 1, "sign": "positive"});

    let twin = TestTwin::start_with(|config| config.clock = Arc::new(RealClock)).await;
    let client = twin.sfn();
    let machine = client
        .create_state_machine()
        .name("small5")
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/bench")
        .send()
        .await?
        .state_machine_arn;
    let shape = Shape { executions, clients };
    // A warm-up burst: connection set-up and first-use costs are not what is measured.
    let warm_up = Shape { executions: WARM_UP_EXECUTIONS, clients };
    burst(&client, &machine, &input, &expected, "warm-up", warm_up, Watch::DescribeExecution).await?;

    println!(
        "sfn endpoint (aws-sdk-sfn → hyper → engine → SQLite): {rounds} bursts of {executions} executions of small5 \
         for each way of watching them, started by {clients} caller(s)"
    );
    for watch in [Watch::ListExecutions, Watch::DescribeExecution] {
        println!("watched with {watch:?}:");
        let mut results = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let prefix = format!("{watch:?}-{round}");
            results.push(burst(&client, &machine, &input, &expected, &prefix, shape, watch).await?);
        }
        summarise(&mut results, executions);
    }
    twin.twin.shutdown().await;
    Ok(())
}

/// How many executions a burst starts, by how many concurrent callers.
#[derive(Clone, Copy)]
struct Shape {
    executions: usize,
    clients: usize,
}

fn summarise(results: &mut [Burst], executions: usize) {
    for (round, result) in results.iter().enumerate() {
        println!(
            "  burst {round}: all started after {:.1} ms, last SUCCEEDED seen after {:.1} ms → {:.0} executions/s{}",
            result.all_started.as_secs_f64() * 1e3,
            result.elapsed.as_secs_f64() * 1e3,
            executions as f64 / result.elapsed.as_secs_f64(),
            result.cpu.map_or_else(String::new, |cpu| format!(
                " ({:.0} per CPU-second of the process)",
                executions as f64 / cpu.as_secs_f64().max(1e-3)
            )),
        );
    }
    results.sort_by_key(|r| r.elapsed);
    let median = executions as f64 / results[results.len() / 2].elapsed.as_secs_f64();
    let best = executions as f64 / results[0].elapsed.as_secs_f64();
    println!(
        "  median {median:.0} executions/s ({:.2}× the {TARGET_EXECUTIONS_PER_SECOND:.0}/s target), best {best:.0}/s \
         ({:.2}×)",
        median / TARGET_EXECUTIONS_PER_SECOND,
        best / TARGET_EXECUTIONS_PER_SECOND
    );
}

/// Starts `shape.executions` executions (names `{prefix}-{n}`) through `shape.clients` concurrent
/// callers, waits until the client has seen every one end (the clock stops there), then checks
/// that each SUCCEEDED with the expected output.
async fn burst(
    client: &aws_sdk_sfn::Client,
    machine: &str,
    input: &str,
    expected: &Value,
    prefix: &str,
    shape: Shape,
    watch: Watch,
) -> anyhow::Result<Burst> {
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let Shape { executions, clients } = shape;
    let callers: Vec<_> = (0..clients)
        .map(|caller| {
            let (client, machine, input, prefix) =
                (client.clone(), machine.to_owned(), input.to_owned(), prefix.to_owned());
            tokio::spawn(async move {
                let mut arns = Vec::new();
                for n in (caller..executions).step_by(clients) {
                    let started = client
                        .start_execution()
                        .state_machine_arn(&machine)
                        .name(format!("{prefix}-{n}"))
                        .input(&input)
                        .send()
                        .await?;
                    arns.push(started.execution_arn);
                }
                anyhow::Ok(arns)
            })
        })
        .collect();
    let mut arns = Vec::with_capacity(executions);
    for caller in callers {
        arns.extend(caller.await??);
    }
    let all_started = started.elapsed();
    let mut pending = arns.clone();
    while !pending.is_empty() {
        pending = match watch {
            Watch::ListExecutions => running(client, machine).await?,
            Watch::DescribeExecution => {
                let mut still_running = Vec::new();
                for arn in pending {
                    let execution = client.describe_execution().execution_arn(&arn).send().await?;
                    if execution.status == ExecutionStatus::Running {
                        still_running.push(arn);
                    }
                }
                still_running
            }
        };
        if !pending.is_empty() {
            if started.elapsed() > BURST_TIMEOUT {
                bail!("{} executions still running after {BURST_TIMEOUT:?}", pending.len());
            }
            tokio::time::sleep(POLL).await;
        }
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_time().zip(cpu_before).map(|(after, before)| after - before);
    for arn in &arns {
        let execution = client.describe_execution().execution_arn(arn).send().await?;
        if execution.status != ExecutionStatus::Succeeded {
            bail!("{arn} ended {}", execution.status);
        }
        let output: Value = serde_json::from_str(execution.output.as_deref().unwrap_or("null"))?;
        if &output != expected {
            bail!("{arn} succeeded with {output}, not {expected}");
        }
    }
    Ok(Burst { elapsed, all_started, cpu })
}

/// The machine's RUNNING executions, every page.
async fn running(client: &aws_sdk_sfn::Client, machine: &str) -> anyhow::Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut next_token = None;
    loop {
        let page = client
            .list_executions()
            .state_machine_arn(machine)
            .status_filter(ExecutionStatus::Running)
            .max_results(1000)
            .set_next_token(next_token)
            .send()
            .await?;
        arns.extend(page.executions.into_iter().map(|e| e.execution_arn));
        next_token = page.next_token;
        if next_token.is_none() {
            return Ok(arns);
        }
    }
}
