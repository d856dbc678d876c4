//! The Step Functions endpoint alone, as `../shared/asl-conformance/tools/speed/speed.py` measures
//! its burst test: EXECUTIONS executions of the 5-state Pass/Choice machine `small5.json` are
//! started one after the other through aws-sdk-sfn, then every one is polled with
//! DescribeExecution (through the SDK too) until it has ended; the time runs from the first
//! StartExecution to the moment the client has seen the last one SUCCEEDED, and every output is
//! checked. The engine persists to SQLite in a temporary directory (group commit, WAL). Issue 4's
//! target: ≥ 2 000 executions/s.
//!
//! Client and server share the process (one tokio runtime), so the figures per CPU-second
//! include the SDK's own work (signing, HTTP) as well as the server's.
//!
//! `cargo bench -p imgflow-tests --bench sfn_endpoint [-- EXECUTIONS [ROUNDS [CLIENTS]]]`:
//! ROUNDS (default 5) bursts of EXECUTIONS (default 200), started by CLIENTS concurrent callers
//! (default 1: strictly one after the other) sharing one SDK client and its keep-alive
//! connections.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use imgflow_engine::{Engine, EngineConfig, NoTasks, RealClock, SqliteStore};
use imgflow_tests::process_cpu_time;
use imgflow_tests::sfn_server::SfnServer;
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

    let data = tempfile::tempdir()?;
    let store = SqliteStore::open(data.path().join("engine.sqlite"))?;
    let engine = Engine::new(Arc::new(store), Arc::new(NoTasks), Arc::new(RealClock), EngineConfig::default())?;
    let server = SfnServer::start(engine).await?;
    let client = server.client();
    let machine = client
        .create_state_machine()
        .name("small5")
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/bench")
        .send()
        .await?
        .state_machine_arn;
    // A warm-up burst: connection set-up and first-use costs are not what is measured.
    burst(&client, &machine, &input, &expected, "warm-up", WARM_UP_EXECUTIONS, clients).await?;

    println!(
        "sfn endpoint (aws-sdk-sfn → hyper → engine → SQLite): {rounds} bursts of {executions} executions of small5, \
         started by {clients} caller(s), polled with DescribeExecution"
    );
    let mut results = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let result = burst(&client, &machine, &input, &expected, &format!("r{round}"), executions, clients).await?;
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
        results.push(result);
    }
    results.sort_by_key(|r| r.elapsed);
    let median = executions as f64 / results[results.len() / 2].elapsed.as_secs_f64();
    let best = executions as f64 / results[0].elapsed.as_secs_f64();
    println!(
        "median {median:.0} executions/s ({:.2}× the {TARGET_EXECUTIONS_PER_SECOND:.0}/s target), best {best:.0}/s \
         ({:.2}×)",
        median / TARGET_EXECUTIONS_PER_SECOND,
        best / TARGET_EXECUTIONS_PER_SECOND
    );
    Ok(())
}

/// Starts `executions` executions (names `{prefix}-{n}`) through `clients` concurrent callers,
/// then polls each until it has ended, checking that it SUCCEEDED with the expected output.
async fn burst(
    client: &aws_sdk_sfn::Client,
    machine: &str,
    input: &str,
    expected: &Value,
    prefix: &str,
    executions: usize,
    clients: usize,
) -> anyhow::Result<Burst> {
    let cpu_before = process_cpu_time();
    let started = Instant::now();
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
    let mut pending = Vec::with_capacity(executions);
    for caller in callers {
        pending.extend(caller.await??);
    }
    let all_started = started.elapsed();
    while !pending.is_empty() {
        let mut still_running = Vec::new();
        for arn in pending {
            let execution = client.describe_execution().execution_arn(&arn).send().await?;
            match execution.status {
                ExecutionStatus::Running => still_running.push(arn),
                ExecutionStatus::Succeeded => {
                    let output: Value = serde_json::from_str(execution.output.as_deref().unwrap_or("null"))?;
                    if &output != expected {
                        bail!("{arn} succeeded with {output}, not {expected}");
                    }
                }
                other => bail!("{arn} ended {other}"),
            }
        }
        pending = still_running;
        if !pending.is_empty() {
            if started.elapsed() > BURST_TIMEOUT {
                bail!("{} executions still running after {BURST_TIMEOUT:?}", pending.len());
            }
            tokio::time::sleep(POLL).await;
        }
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_time().zip(cpu_before).map(|(after, before)| after - before);
    Ok(Burst { elapsed, all_started, cpu })
}
