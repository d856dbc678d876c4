//! The Step Functions endpoint alone: executions of the 5-state Pass/Choice machine of
//! `../shared/asl-conformance/tools/speed/small5.json`, started back to back through aws-sdk-sfn
//! against the endpoint with the engine on a SQLite store, timed until the last one SUCCEEDED.
//! Prints executions per second (issue 4's target: ≥ 2 000/s with persistence).
//!
//! `cargo bench -p imgflow-tests --bench sfn_endpoint [-- EXECUTIONS [CLIENTS]]`: EXECUTIONS
//! (default 200) are started by CLIENTS concurrent callers (default 1: strictly one after the
//! other) sharing one SDK client.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_sfn::types::ExecutionStatus;
use imgflow_engine::{Engine, EngineConfig, NoTasks, RealClock, SqliteStore};
use imgflow_tests::sfn_server::SfnServer;

const SPEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/asl-conformance/tools/speed");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let executions: usize = args.next().map(|a| a.parse()).transpose().context("EXECUTIONS")?.unwrap_or(200);
    let clients: usize = args.next().map(|a| a.parse()).transpose().context("CLIENTS")?.unwrap_or(1).max(1);
    let definition_path = Path::new(SPEED).join("small5.json");
    let Ok(definition) = std::fs::read_to_string(&definition_path) else {
        println!("skipped: {} is absent", definition_path.display());
        return Ok(());
    };

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
    // One warm-up execution: connection set-up is not what is measured.
    client.start_execution().state_machine_arn(&machine).name("warm-up").input(r#"{"x": 1}"#).send().await?;
    wait_for_succeeded(&client, &machine, 1).await?;

    let started = Instant::now();
    let callers: Vec<_> = (0..clients)
        .map(|caller| {
            let client = client.clone();
            let machine = machine.clone();
            tokio::spawn(async move {
                for n in (caller..executions).step_by(clients) {
                    client
                        .start_execution()
                        .state_machine_arn(&machine)
                        .name(format!("run-{n}"))
                        .input(r#"{"x": 1}"#)
                        .send()
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for caller in callers {
        caller.await??;
    }
    let all_started = started.elapsed();
    wait_for_succeeded(&client, &machine, executions + 1).await?;
    let elapsed = started.elapsed();

    println!(
        "sfn endpoint, SQLite store: {executions} executions of small5 started by {clients} caller(s) through \
         aws-sdk-sfn: all started in {:.1} ms, last SUCCEEDED after {:.1} ms → {:.0} executions/s",
        all_started.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e3,
        executions as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Polls ListExecutions (SUCCEEDED, all pages) until `count` executions succeeded; fails when
/// any ended otherwise.
async fn wait_for_succeeded(client: &aws_sdk_sfn::Client, machine: &str, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut succeeded = 0;
        let mut executions = client.list_executions().state_machine_arn(machine).into_paginator().items().send();
        while let Some(execution) = executions.next().await {
            match execution?.status {
                ExecutionStatus::Succeeded => succeeded += 1,
                ExecutionStatus::Running => {}
                other => bail!("an execution ended {other}"),
            }
        }
        if succeeded >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {succeeded} of {count} executions succeeded within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
