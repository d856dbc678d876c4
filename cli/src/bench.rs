//! `imgflow bench`: times the resize step's own code (`resize::render_renditions`, what the
//! Lambda handler runs on the object's bytes) on local photos, warm, in one process.
//!
//! It speaks the in-process protocol of the anchors in `../shared/bench` (`--bench REPS OUTDIR
//! INPUT...`, one `name<TAB>wall ms<TAB>cpu ms` line per image) and their whole-process one
//! (`--once INPUT OUTDIR`), so `scripts/bench-resize` can run it beside libvips, sharp and Pillow.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use imgflow_steps::StepConfig;
use imgflow_steps::event::UploadedObject;
use imgflow_steps::pipeline::{StoredObject, object_created_event};
use imgflow_steps::resize::render_renditions;
use imgflow_steps::validate::inspect;

#[derive(Args)]
#[command(after_long_help = SIZING_HELP)]
pub struct BenchArgs {
    /// Timed runs per image, after one untimed warm-up run; the medians are printed.
    #[arg(long, alias = "bench", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    reps: u32,
    /// Also time the validate and read-exif steps' own code on each image (four more columns).
    #[arg(long)]
    steps: bool,
    /// Run the step once on one image, untimed and silent: `imgflow bench --once INPUT OUTDIR`
    /// (the whole-process protocol of the anchors' benchmark).
    #[arg(long, conflicts_with_all = ["reps", "steps"])]
    once: bool,
    /// OUTDIR then the images (`--once`: the image, then OUTDIR). Renditions are written as
    /// OUTDIR/{stem}_{rendition}.{ext}.
    #[arg(required = true, num_args = 2..)]
    paths: Vec<PathBuf>,
}

const SIZING_HELP: &str = "\
Prints one line per image: name, median wall ms and median CPU ms (user + system time of all the
process's threads) of the resize step, warm, as in a warm Lambda. With --steps, four more columns:
validate wall and CPU ms, read-exif wall and CPU ms. The peak resident memory of the whole run is
printed on stderr at the end.

Sizing the resize Lambda on your own photos: the renditions are the step's configuration
(IMGFLOW_RENDITIONS, IMGFLOW_MAX_BYTES, IMGFLOW_MAX_PIXELS, as the Lambda reads them). Lambda gives
a function CPU in proportion to its memory, one full vCPU at 1769 MB; the step uses one core, so its
duration at M MB is about CPU ms x 1769 / M below 1769 MB and about CPU ms above. The memory must
also hold the peak resident set printed here plus the runtime's own (about 30 MB).

Example: imgflow bench --reps 5 /tmp/renditions ~/Pictures/*.jpg";

pub fn run(args: BenchArgs) -> Result<u8> {
    let config = StepConfig::from_env()?;
    if args.once {
        let [input, outdir] = args.paths.as_slice() else {
            bail!("--once takes exactly INPUT OUTDIR");
        };
        std::fs::create_dir_all(outdir).with_context(|| format!("creating {}", outdir.display()))?;
        let bytes = read(input)?;
        write_renditions(&bytes, input, outdir, &config)?;
        return Ok(0);
    }
    let (outdir, inputs) = args.paths.split_first().context("OUTDIR and at least one image are required")?;
    // Image after image, as a warm Lambda renders them (which does the same).
    imgflow_steps::memory::reuse_freed_memory();
    std::fs::create_dir_all(outdir).with_context(|| format!("creating {}", outdir.display()))?;
    if args.steps {
        println!(
            "# image\tresize wall ms\tresize cpu ms\tvalidate wall ms\tvalidate cpu ms\tread-exif wall ms\tread-exif cpu ms"
        );
    }
    let mut failed = 0;
    for input in inputs {
        match bench_image(input, outdir, &config, args.reps, args.steps) {
            Ok(line) => println!("{line}"),
            Err(error) => {
                failed += 1;
                eprintln!("{}: {error:#}", input.display());
            }
        }
    }
    if let Some(peak) = peak_resident_mb() {
        eprintln!("peak resident memory of this run: {peak:.0} MB");
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// One output line for `input`: its file name and the median timings.
fn bench_image(input: &Path, outdir: &Path, config: &StepConfig, reps: u32, steps: bool) -> Result<String> {
    let bytes = read(input)?;
    let name = input.file_name().map_or_else(|| input.display().to_string(), |n| n.to_string_lossy().into_owned());
    // Warm-up: the first run pays for page faults and lazy initialisation, as a cold Lambda does.
    write_renditions(&bytes, input, outdir, config)?;
    let resize = measure(reps, || render_renditions(&bytes, &config.renditions, &config.limits).map(drop))?;
    let mut line = format!("{name}\t{}", resize.columns());
    if steps {
        let event = object_created_event(&stored_object(input, bytes.len()), "bench");
        let validate = measure(reps, || {
            let object = UploadedObject::from_event(&event)?;
            inspect(&object, &bytes, &config.limits).map(drop)
        })?;
        let read_exif = measure(reps, || {
            // black_box: the report is unused here, and the work must not be optimised away.
            let _ = std::hint::black_box(imgflow_imaging::read_exif(&bytes, config.keep_gps));
            Ok::<_, imgflow_steps::StepError>(())
        })?;
        line = format!("{line}\t{}\t{}", validate.columns(), read_exif.columns());
    }
    Ok(line)
}

fn read(input: &Path) -> Result<Vec<u8>> {
    std::fs::read(input).with_context(|| format!("reading {}", input.display()))
}

/// Runs the step and writes its renditions as OUTDIR/{stem}_{rendition}.{ext}.
fn write_renditions(bytes: &[u8], input: &Path, outdir: &Path, config: &StepConfig) -> Result<()> {
    let stem = input.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy());
    let renditions = render_renditions(bytes, &config.renditions, &config.limits)?;
    for rendition in renditions {
        let path = outdir.join(format!("{stem}_{}.{}", rendition.name, rendition.format.extension()));
        std::fs::write(&path, &rendition.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The object the validate step would be told about: an upload of `input` under `uploads/`.
fn stored_object(input: &Path, size: usize) -> StoredObject {
    StoredObject {
        bucket: "imgflow-bench".into(),
        key: format!("uploads/{}", input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
        size: size as u64,
        etag: None,
        version_id: None,
        sequencer: None,
        request_id: None,
        reason: "PutObject".into(),
        time: chrono::Utc::now(),
        region: "local".into(),
        account: "000000000000".into(),
    }
}

/// Median wall and CPU time of `reps` runs.
struct Timing {
    wall: Duration,
    cpu: Duration,
}

impl Timing {
    fn columns(&self) -> String {
        format!("{:.2}\t{:.2}", self.wall.as_secs_f64() * 1e3, self.cpu.as_secs_f64() * 1e3)
    }
}

fn measure<E>(reps: u32, mut run: impl FnMut() -> Result<(), E>) -> Result<Timing>
where
    anyhow::Error: From<E>,
{
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (cpu_start, start) = (process_cpu_time()?, Instant::now());
        run()?;
        walls.push(start.elapsed());
        cpus.push(process_cpu_time()? - cpu_start);
    }
    Ok(Timing { wall: median(walls), cpu: median(cpus) })
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) { (values[middle - 1] + values[middle]) / 2 } else { values[middle] }
}

/// User + system CPU time of every thread of this process (the JPEG decoder uses a helper
/// thread), with nanosecond resolution; /proc's clock ticks are 10 ms, too coarse per image.
fn process_cpu_time() -> Result<Duration> {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    if status != 0 {
        bail!("clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed: {}", std::io::Error::last_os_error());
    }
    Ok(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

/// The process's peak resident set (VmHWM) in MB, when /proc tells it.
fn peak_resident_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
