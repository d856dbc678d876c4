//! Issue 4's end-to-end benchmark: uploads per second through the twin (POST /upload → S3 →
//! event → engine → the four steps in-process → metadata) for a batch of 12 MP+ photos, next to
//! the image steps alone (validate + read-exif + resize on the same bytes in memory) with the
//! same parallelism. The difference is what the orchestration costs; the target is < 10 %.
//! Each phase prints its wall time, the process's CPU time, the cores' idle time and its page
//! faults: on a shared machine the CPU figures are the steadier comparison, idle time is what
//! wall time loses beyond CPU time, and the faults show memory that was not reused (each fault
//! maps a fresh page, often a 2 MiB huge page that the kernel zeroes first). The twin phase's CPU
//! is also split by thread: the renders, the twin's other work per upload (the orchestration,
//! measured directly rather than as a difference of totals), and the uploading client. Before
//! each twin phase the same photos are stored alone through the twin's S3 endpoint, where nothing
//! starts: that part of the twin's work (receiving, MD5 ETag, file) is what any S3-faithful store
//! pays, the floor under the orchestration's cost.
//!
//!     cargo bench -p imgflow-tests --bench twin_throughput [-- --rounds N] [--repeats R] [--max-concurrent C]
//!
//! N (default 6) times the 12 MP+ JPEGs of ../shared/images make the batch. The twin runs with
//! its default limit of concurrent executions (the number of cores), or C. The three phases run one
//! after the other R times (default 5); the overhead printed last is the median of the repeats'
//! own overheads (each repeat's twin against the steps run just before it).
//!
//! Needs ../shared/images (skipped without it).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::config::RequestChecksumCalculation;
use imgflow_engine::{ExecutionStatus, RealClock};
use imgflow_imaging::{Limits, probe, render};
use imgflow_steps::StepConfig;
use imgflow_steps::pipeline::{StoredObject, object_created_event, process_bytes};
use imgflow_tests::twin::TestTwin;
use imgflow_tests::{process_cpu_time, process_page_faults, shared_dir, thread_cpu_times};

// As `imgflow serve` has it.
#[global_allocator]
static ALLOCATOR: imgflow_steps::memory::HugePageAllocator = imgflow_steps::memory::HugePageAllocator;

const TWELVE_MP: u64 = 12_000_000;

fn batch(rounds: usize) -> Vec<(String, Vec<u8>)> {
    let Some(shared) = shared_dir() else { return Vec::new() };
    let mut photos: Vec<(String, Vec<u8>)> = std::fs::read_dir(shared.join("images"))
        .expect("../shared/images")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let bytes = std::fs::read(&path).ok()?;
            let facts = probe(&bytes, &Limits::default()).ok()?;
            let large_jpeg = facts.format.name() == "jpeg"
                && u64::from(facts.stored_width) * u64::from(facts.stored_height) >= TWELVE_MP;
            let name = path.file_name()?.to_string_lossy().into_owned();
            large_jpeg.then_some((name, bytes))
        })
        .collect();
    photos.sort_by(|a, b| a.0.cmp(&b.0));
    (0..rounds).flat_map(|_| photos.clone()).collect()
}

/// Wall and CPU time and page faults of one phase.
struct Timing {
    wall: Duration,
    cpu: Duration,
    page_faults: u64,
}

impl Timing {
    fn measure(run: impl FnOnce()) -> Timing {
        let (started, cpu_before) = (Instant::now(), process_cpu_time().unwrap_or_default());
        let faults_before = process_page_faults().unwrap_or_default();
        run();
        Timing {
            wall: started.elapsed(),
            cpu: process_cpu_time().unwrap_or_default().saturating_sub(cpu_before),
            page_faults: process_page_faults().unwrap_or_default().saturating_sub(faults_before),
        }
    }

    /// How much more this phase took than `base`, wall and CPU, in per cent.
    fn over(&self, base: &Timing) -> (f64, f64) {
        let ratio = |a: Duration, b: Duration| (a.as_secs_f64() / b.as_secs_f64().max(1e-9) - 1.0) * 100.0;
        (ratio(self.wall, base.wall), ratio(self.cpu, base.cpu))
    }
}

/// The name of the threads that send the uploads, apart from the twin's own.
const CLIENT_THREADS: &str = "bench-client";

/// The twin phase's CPU time by who spent it.
#[derive(Default)]
struct CpuByThread {
    /// The image threads (`imgflow-cpu-N`): the renders.
    images: Duration,
    /// Every other thread of the twin: HTTP, S3, MD5, the engine and its journal, the other steps.
    twin: Duration,
    /// The uploading client and the bench's main thread. On loopback the sending thread also pays
    /// for the kernel's receiving of what it sends.
    client: Duration,
}

impl CpuByThread {
    fn between(before: &HashMap<u32, (String, Duration)>, after: &HashMap<u32, (String, Duration)>) -> CpuByThread {
        let main = std::process::id();
        let mut split = CpuByThread::default();
        for (id, (name, cpu)) in after {
            let spent = cpu.saturating_sub(before.get(id).map_or(Duration::ZERO, |(_, earlier)| *earlier));
            let role = if name.starts_with(imgflow_steps::cpu_pool::THREAD_NAME_PREFIX) {
                &mut split.images
            } else if *id == main || name.starts_with(CLIENT_THREADS) {
                &mut split.client
            } else {
                &mut split.twin
            };
            *role += spent;
        }
        split
    }
}

/// Runs `work` on every photo with `workers` threads.
fn parallel(photos: &[(String, Vec<u8>)], workers: usize, work: impl Fn(&[u8]) + Sync) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((_, bytes)) = photos.get(index) else { break };
                    work(bytes);
                }
            });
        }
    });
}

fn stored(bytes: &[u8]) -> StoredObject {
    StoredObject {
        bucket: "images".into(),
        key: "uploads/bench".into(),
        size: bytes.len() as u64,
        etag: None,
        version_id: None,
        sequencer: Some("0".into()),
        request_id: None,
        reason: "PutObject".into(),
        time: chrono::Utc::now(),
        region: "us-east-1".into(),
        account: "123456789012".into(),
    }
}

/// What the twin's threads spent on the same photos twice: stored alone, then end to end.
struct TwinPhase {
    timing: Timing,
    by_thread: CpuByThread,
    /// The twin's own threads while the photos were only stored (S3 PutObject outside
    /// `uploads/`: received, hashed with MD5, written; no execution).
    storing: Duration,
}

/// Stores every photo at once through the twin's S3 endpoint under `bench/`, where nothing starts:
/// the part of an upload's cost that any S3-faithful store pays (receiving the bytes, their MD5
/// ETag, the file). The payload is sent unsigned and without a flexible checksum, as `POST /upload`
/// receives it, so that neither SHA-256 nor CRC32 is counted.
async fn store_alone(twin: &TestTwin, bodies: &[hyper::body::Bytes]) -> Duration {
    let config = twin.s3().config().to_builder().request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
    let s3 = aws_sdk_s3::Client::from_conf(config.build());
    let before = thread_cpu_times();
    let puts = bodies.iter().enumerate().map(|(index, bytes)| {
        s3.put_object()
            .bucket("images")
            .key(format!("bench/{index}"))
            .content_type("image/jpeg")
            .body(bytes.clone().into())
            .customize()
            .disable_payload_signing()
            .send()
    });
    for stored in futures::future::join_all(puts).await {
        stored.expect("PutObject outside uploads/");
    }
    CpuByThread::between(&before, &thread_cpu_times()).twin
}

/// Stores the photos alone first (`store_alone`), then uploads every photo at once through the
/// twin's HTTP API and waits for every execution to end. The end is watched through the engine's
/// status changes (subscribed before the first upload), not by polling `GET /images/{id}`: the
/// timing stops at the last execution's end, and the polling's requests — a share of the twin's
/// CPU — stay out of the figure. Every image's metadata is checked through `GET /images/{id}`
/// after the clock stops. The uploads are sent from a runtime of their own, so that the twin's
/// threads do the twin's work only and the phase's CPU can be split by thread.
fn through_the_twin(photos: &[(String, Vec<u8>)], workers: usize, max_concurrent: Option<usize>) -> TwinPhase {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(CLIENT_THREADS)
        .enable_all()
        .build()
        .expect("the client's runtime");
    let twin = runtime.block_on(TestTwin::start_with(|config| {
        config.clock = Arc::new(RealClock);
        if let Some(max) = max_concurrent {
            config.max_concurrent_executions = max;
        }
    }));
    // Warm-up, as the steps alone are warmed by the resize phase before them: one image per
    // worker end to end, at once (connections, SQLite pages, every image thread's heap).
    client.block_on(async {
        let uploads = photos.iter().take(workers).map(|(_, bytes)| twin.upload(bytes.clone(), "image/jpeg"));
        for warm in futures::future::join_all(uploads).await {
            twin.wait_for_image(&warm.image_id).await;
        }
    });
    // Shared buffers: the client's copies of the photos are no part of the twin's cost.
    let bodies: Vec<hyper::body::Bytes> =
        photos.iter().map(|(_, bytes)| hyper::body::Bytes::from(bytes.clone())).collect();
    let storing = client.block_on(store_alone(&twin, &bodies));
    let mut changes = twin.twin.engine().subscribe();
    let mut answers = Vec::new();
    let threads_before = thread_cpu_times();
    let timing = Timing::measure(|| {
        client.block_on(async {
            let uploads = bodies.iter().map(|bytes| twin.upload(bytes.clone(), "image/jpeg"));
            answers = futures::future::join_all(uploads).await;
            let mut running: HashSet<&str> = answers.iter().map(|a| a.execution_arn.as_str()).collect();
            while !running.is_empty() {
                let change = changes.recv().await.expect("the engine's status changes (none missed)");
                let execution = change.execution;
                if execution.status != ExecutionStatus::Running && running.remove(execution.execution_arn.as_str()) {
                    assert_eq!(execution.status, ExecutionStatus::Succeeded, "{execution:?}");
                }
            }
        })
    });
    let by_thread = CpuByThread::between(&threads_before, &thread_cpu_times());
    client.block_on(async {
        for answer in &answers {
            let (status, record) = twin.image(&answer.image_id).await;
            assert_eq!((status, &record["status"]), (200, &serde_json::json!("SUCCEEDED")), "{record}");
        }
    });
    runtime.block_on(twin.twin.shutdown());
    TwinPhase { timing, by_thread, storing }
}

/// The value of `--NAME N` on the command line, or `default`.
fn option(name: &str, default: usize) -> usize {
    std::env::args().skip_while(|a| a != name).nth(1).and_then(|n| n.parse().ok()).unwrap_or(default).max(1)
}

/// The timing of median wall time among `timings`.
fn median(timings: &mut [Timing]) -> &Timing {
    timings.sort_by_key(|t| t.wall);
    &timings[timings.len() / 2]
}

/// The middle value (the upper one of an even count).
fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What the twin took beyond the steps alone and beyond resize alone, in one repeat: wall and CPU,
/// in per cent; and the CPU of the twin's threads alone (the client's left out) over the steps
/// alone.
struct Overhead {
    over_steps: (f64, f64),
    over_resize: (f64, f64),
    twin_threads_over_steps: f64,
}

impl Overhead {
    fn new(twin: &Timing, by_thread: &CpuByThread, steps: &Timing, resize_only: &Timing) -> Overhead {
        let twin_threads = (by_thread.images + by_thread.twin).as_secs_f64();
        Overhead {
            over_steps: twin.over(steps),
            over_resize: twin.over(resize_only),
            twin_threads_over_steps: (twin_threads / steps.cpu.as_secs_f64().max(1e-9) - 1.0) * 100.0,
        }
    }

    fn print(&self, label: &str) {
        let Overhead { over_steps: (wall_s, cpu_s), over_resize: (wall_r, cpu_r), twin_threads_over_steps } = self;
        println!(
            "{label} (target < 10 %): {wall_s:+.1} % wall, {cpu_s:+.1} % CPU over the steps alone \
             ({twin_threads_over_steps:+.1} % CPU without the client's); {wall_r:+.1} % wall, {cpu_r:+.1} % CPU over \
             resize alone"
        );
    }
}

fn main() {
    let rounds = option("--rounds", 6);
    let repeats = option("--repeats", 5);
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let max_concurrent = std::env::args().any(|a| a == "--max-concurrent").then(|| option("--max-concurrent", workers));
    let photos = batch(rounds);
    if photos.is_empty() {
        eprintln!("skipped: ../shared/images is absent");
        return;
    }
    // As `imgflow serve` does; both phases run with it.
    imgflow_steps::memory::reuse_freed_memory();
    let config = StepConfig::default();
    let count = photos.len() as f64;
    println!(
        "{} uploads of 12 MP+ JPEGs ({} photos × {rounds}), {workers} at a time (the twin: {} executions at once); \
         the three phases run one after the other, {repeats} times; each repeat's twin is compared with the phases \
         just before it",
        photos.len(),
        photos.len() / rounds,
        max_concurrent.unwrap_or(workers)
    );

    // Warm the steps too, then time them.
    let event = object_created_event(&stored(&photos[0].1), "bench");
    process_bytes(&event, &photos[0].1, &config).expect("the photo processes");
    let (mut resize_only, mut steps, mut twin, mut overheads) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut twin_work_per_upload, mut storing_per_upload) = (Vec::new(), Vec::new());
    let rate = |timing: &Timing| count / timing.wall.as_secs_f64();
    // Idle: the cores' time that no thread of the process used (cores × wall − CPU); what the
    // twin's wall time loses beyond its CPU time.
    let row = |name: &str, timing: &Timing| {
        println!(
            "{name:<44} {:>9.2} {:>10.2} {:>9.2} {:>9.2} {:>12}",
            timing.wall.as_secs_f64(),
            rate(timing),
            timing.cpu.as_secs_f64(),
            (workers as f64 * timing.wall.as_secs_f64() - timing.cpu.as_secs_f64()).max(0.0),
            timing.page_faults
        );
    };
    let names = [
        "resize step alone (in memory)",
        "validate + read-exif + resize (in memory)",
        "twin end to end (HTTP upload → metadata)",
    ];
    println!("{:<44} {:>9} {:>10} {:>9} {:>9} {:>12}", "", "wall s", "images/s", "CPU s", "idle s", "page faults");
    // Alternated, so that a slow spell of the machine weighs on every phase alike.
    for repeat in 0..repeats {
        println!("repeat {repeat}:");
        resize_only.push(Timing::measure(|| {
            parallel(&photos, workers, |bytes| {
                render(bytes, &config.renditions, &config.limits).expect("resize");
            })
        }));
        steps.push(Timing::measure(|| {
            parallel(&photos, workers, |bytes| {
                let event = object_created_event(&stored(bytes), "bench");
                process_bytes(&event, bytes, &config).expect("the steps");
            })
        }));
        let TwinPhase { timing, by_thread, storing } = through_the_twin(&photos, workers, max_concurrent);
        twin.push(timing);
        for (name, timings) in names.iter().zip([&resize_only, &steps, &twin]) {
            row(name, &timings[repeat]);
        }
        let per_upload = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / count;
        let of_the_renders = |cpu: Duration| cpu.as_secs_f64() / by_thread.images.as_secs_f64().max(1e-9) * 100.0;
        println!(
            "  the twin's CPU by thread: renders {:.1} ms per upload, the twin's other work {:.1} ms ({:.1} % of the \
             renders), the uploading client {:.1} ms",
            per_upload(by_thread.images),
            per_upload(by_thread.twin),
            of_the_renders(by_thread.twin),
            per_upload(by_thread.client)
        );
        println!(
            "  of which storing the uploads as S3 does, measured alone (PutObject outside uploads/): {:.1} ms per \
             upload ({:.1} % of the renders)",
            per_upload(storing),
            of_the_renders(storing)
        );
        twin_work_per_upload.push(per_upload(by_thread.twin));
        storing_per_upload.push(per_upload(storing));
        let overhead = Overhead::new(&twin[repeat], &by_thread, &steps[repeat], &resize_only[repeat]);
        overhead.print("  overhead in this repeat");
        overheads.push(overhead);
    }
    println!("median of each phase:");
    for (name, timings) in names.iter().zip([&mut resize_only, &mut steps, &mut twin]) {
        row(name, median(timings));
    }
    // Each repeat's twin against the phases just before it: a drift of the machine's speed
    // between repeats cancels out.
    let middle = |pick: fn(&Overhead) -> f64| median_of(overheads.iter().map(pick).collect());
    println!(
        "the twin's own work beyond the renders (every thread but the image threads and the client's), median: \
         {:.1} ms of CPU per upload, of which {:.1} ms storing the upload as S3 does",
        median_of(twin_work_per_upload),
        median_of(storing_per_upload)
    );
    Overhead {
        over_steps: (middle(|o| o.over_steps.0), middle(|o| o.over_steps.1)),
        over_resize: (middle(|o| o.over_resize.0), middle(|o| o.over_resize.1)),
        twin_threads_over_steps: middle(|o| o.twin_threads_over_steps),
    }
    .print("orchestration overhead, median of the repeats");
}
