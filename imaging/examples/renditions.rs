//! Renders the benchmark job with imgflow-imaging: per input, a rendition fitting 1280×1280 and
//! one fitting 256×256, written as OUTDIR/<stem>_1280.<ext> and OUTDIR/<stem>_256.<ext>.
//! Same interface as the anchors in /work/shared/bench (anchor_pyvips.py):
//!
//!   renditions INPUT OUTDIR
//!   renditions --bench REPS OUTDIR INPUT...   (prints name<TAB>wall ms<TAB>cpu ms per input)
//!
//! RENDITION_FORMAT=jpeg|webp|png (default jpeg), quality 80.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use imgflow_imaging::{Limits, RenditionFormat, RenditionSpec, render};

fn specs() -> Result<Vec<RenditionSpec>> {
    let format = match std::env::var("RENDITION_FORMAT").as_deref() {
        Ok("jpeg") | Err(_) => RenditionFormat::Jpeg,
        Ok("webp") => RenditionFormat::Webp,
        Ok("png") => RenditionFormat::Png,
        Ok(other) => bail!("RENDITION_FORMAT must be jpeg, webp or png, not {other}"),
    };
    Ok([1280, 256]
        .into_iter()
        .map(|size| RenditionSpec { name: size.to_string(), max_width: size, max_height: size, format, quality: 80 })
        .collect())
}

fn job(input: &Path, outdir: &Path, specs: &[RenditionSpec]) -> Result<()> {
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let stem = input.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
    let renditions =
        render(&bytes, specs, &Limits::default()).with_context(|| format!("rendering {}", input.display()))?;
    for rendition in renditions {
        let path = outdir.join(format!("{stem}_{}.{}", rendition.name, rendition.format.extension()));
        std::fs::write(&path, &rendition.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// CPU time of this process (user + system, every thread), in milliseconds.
fn cpu_ms() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) } != 0 {
        return f64::NAN;
    }
    now.tv_sec as f64 * 1e3 + now.tv_nsec as f64 / 1e6
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let specs = specs()?;
    match args.as_slice() {
        [flag, reps, outdir, inputs @ ..] if flag == "--bench" && !inputs.is_empty() => {
            let reps: usize = reps.parse().context("REPS must be a number")?;
            let outdir = Path::new(outdir);
            std::fs::create_dir_all(outdir)?;
            for input in inputs {
                let input = Path::new(input);
                job(input, outdir, &specs)?; // warm-up
                let (mut wall, mut cpu) = (Vec::new(), Vec::new());
                for _ in 0..reps.max(1) {
                    let (cpu_start, start) = (cpu_ms(), Instant::now());
                    job(input, outdir, &specs)?;
                    wall.push(start.elapsed().as_secs_f64() * 1e3);
                    cpu.push(cpu_ms() - cpu_start);
                }
                let name = input.file_name().and_then(|n| n.to_str()).unwrap_or("?");
                println!("{name}\t{:.2}\t{:.2}", median(&mut wall), median(&mut cpu));
            }
            Ok(())
        }
        [input, outdir] => {
            std::fs::create_dir_all(outdir)?;
            job(Path::new(input), Path::new(outdir), &specs)
        }
        _ => bail!("usage: renditions INPUT OUTDIR | renditions --bench REPS OUTDIR INPUT..."),
    }
}
