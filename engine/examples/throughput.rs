//! The speed benchmark of the engine: the three workloads of
//! `../shared/asl-conformance/tools/speed/` (a 1000-Pass chain, an inline Map over 1000 items,
//! 200 short executions started back to back, each start awaited before the next as the shared
//! tools do), in memory and with SQLite persistence, printing state transitions per second. A
//! fourth row, `small5-all`, starts the same 200 executions at once (200 concurrent callers), the
//! case group commit is for: their starts share commits.
//!
//! Executions run on a single-threaded tokio runtime. Besides wall-clock throughput it prints
//! throughput per CPU-second of the process (from `/proc/self/stat`), which stays meaningful when
//! other programs load the machine, and, with SQLite, how many pages the commits wrote to the WAL
//! per execution (the WAL file's frames once the executions have ended: what persistence costs
//! is mostly those writes).
//!
//! `cargo run -p imgflow-engine --release --example throughput [-- REPEATS [WORKLOAD]]`

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use imgflow_engine::{
    Engine, EngineConfig, ExecutionStatus, HistoryStore, InstantClock, MemoryStore, NoTasks, SqliteStore,
};

const SPEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/asl-conformance/tools/speed");

struct Workload {
    name: &'static str,
    /// Whether the executions are started by concurrent callers rather than one after the other.
    concurrent_starts: bool,
    definition: String,
    input: String,
    executions: usize,
    transitions_per_execution: usize,
}

fn load(
    name: &'static str,
    file: &str,
    executions: usize,
    transitions_per_execution: usize,
) -> std::io::Result<Workload> {
    let dir = Path::new(SPEED);
    Ok(Workload {
        name,
        concurrent_starts: name != file,
        definition: std::fs::read_to_string(dir.join(format!("{file}.json")))?,
        input: std::fs::read_to_string(dir.join(format!("{file}.input.json")))?,
        executions,
        transitions_per_execution,
    })
}

/// One run: its wall time and, given the database's WAL file, the frames (pages) the run wrote to it.
async fn run_once(
    workload: &Workload,
    store: Arc<dyn HistoryStore>,
    wal: Option<&Path>,
) -> Result<(Duration, Option<u64>), String> {
    let config = EngineConfig { max_concurrent_executions: 256, ..EngineConfig::default() };
    let engine =
        Engine::new(store, Arc::new(NoTasks), Arc::new(InstantClock::new()), config).map_err(|e| e.to_string())?;
    let machine = engine
        .create_state_machine(workload.name, &workload.definition, "arn:aws:iam::123456789012:role/bench")
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut arns = Vec::with_capacity(workload.executions);
    if workload.concurrent_starts {
        let starts =
            (0..workload.executions).map(|_| engine.start_execution(&machine.arn, None, Some(&workload.input)));
        for execution in futures::future::join_all(starts).await {
            arns.push(execution.map_err(|e| e.to_string())?.execution_arn);
        }
    } else {
        for _ in 0..workload.executions {
            let execution =
                engine.start_execution(&machine.arn, None, Some(&workload.input)).await.map_err(|e| e.to_string())?;
            arns.push(execution.execution_arn);
        }
    }
    for arn in &arns {
        let done = engine.wait_for_completion(arn).await.map_err(|e| e.to_string())?;
        if done.status != ExecutionStatus::Succeeded {
            return Err(format!("{arn} ended {} ({:?}: {:?})", done.status, done.error, done.cause));
        }
    }
    let elapsed = started.elapsed();
    // Read while the engine (and with it the database) is open: closing checkpoints the WAL.
    Ok((elapsed, wal.and_then(wal_frames)))
}

/// The frames in a WAL file: a 32-byte header (the page size at bytes 8–11, big-endian), then
/// frames of a 24-byte header and one page.
fn wal_frames(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let page_size = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
    Some((bytes.len() as u64).saturating_sub(32) / (u64::from(page_size) + 24))
}

/// CPU time used by this process so far (user + system), from `/proc/self/stat`.
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel reports in USER_HZ, 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if !Path::new(SPEED).is_dir() {
        println!("skipped: the speed workloads are not at {SPEED}");
        return Ok(());
    }
    let repeats: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10).max(1);
    let only = std::env::args().nth(2);
    let mut workloads = vec![
        load("chain1000", "chain1000", 1, 1000)?,
        load("map1000", "map1000", 1, 3001)?,
        load("small5", "small5", 200, 5)?,
        load("small5-all", "small5", 200, 5)?,
    ];
    workloads.retain(|w| only.as_deref().is_none_or(|o| o == w.name));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let dir = tempfile::tempdir()?;
    println!(
        "{:<11} {:<8} {:>10} {:>15} {:>19} {:>15}",
        "workload", "store", "median", "transitions/s", "transitions/cpu-s", "wal-pages/exec"
    );
    for workload in &workloads {
        for persisted in [false, true] {
            let mut times = Vec::with_capacity(repeats);
            let mut frames = Vec::with_capacity(repeats);
            let cpu_before = process_cpu_time();
            for repeat in 0..repeats {
                let path = dir.path().join(format!("{}-{repeat}.db", workload.name));
                let wal = path.with_extension("db-wal");
                let store: Arc<dyn HistoryStore> =
                    if persisted { Arc::new(SqliteStore::open(&path)?) } else { Arc::new(MemoryStore::new()) };
                let (time, written) =
                    runtime.block_on(run_once(workload, store, persisted.then_some(wal.as_path())))?;
                times.push(time);
                frames.extend(written);
            }
            let cpu = process_cpu_time().zip(cpu_before).map(|(after, before)| after - before);
            times.sort();
            let median = times[times.len() / 2];
            let transitions = (workload.executions * workload.transitions_per_execution) as f64;
            let per_cpu_second = cpu.filter(|cpu| !cpu.is_zero()).map_or_else(
                || "n/a".to_owned(),
                |cpu| format!("{:.0}", transitions * repeats as f64 / cpu.as_secs_f64()),
            );
            frames.sort();
            let pages_per_execution = frames
                .get(frames.len() / 2)
                .map_or_else(|| "-".to_owned(), |f| format!("{:.1}", *f as f64 / workload.executions as f64));
            println!(
                "{:<11} {:<8} {:>8.1}ms {:>15.0} {:>19} {:>15}",
                workload.name,
                if persisted { "sqlite" } else { "memory" },
                median.as_secs_f64() * 1000.0,
                transitions / median.as_secs_f64(),
                per_cpu_second,
                pages_per_execution
            );
        }
    }
    Ok(())
}
