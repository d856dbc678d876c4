//! `imgflow process PATH... --out DIR`: validate → read-exif → resize on local files with the
//! steps' own code, no AWS. Writes `DIR/{stem}/{rendition}.{ext}` and `DIR/{stem}/metadata.json`
//! (the item write-metadata would store).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use imgflow_steps::StepConfig;
use imgflow_steps::metadata::ImageRecord;
use imgflow_steps::pipeline::{StoredObject, object_created_event, process_bytes};
use imgflow_steps::write_metadata::{CaughtError, RecordRequest, build_record};

/// Extensions picked up when walking a folder (files named explicitly are always processed).
const IMAGE_EXTENSIONS: &[&str] =
    &["jpg", "jpeg", "jpe", "png", "webp", "gif", "tif", "tiff", "heic", "heif", "avif", "bmp"];

#[derive(Args)]
pub struct ProcessArgs {
    /// Image files, or folders to walk for images.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where to write `{stem}/{rendition}.{ext}` and `{stem}/metadata.json`.
    #[arg(long, short)]
    out: PathBuf,
    /// The bucket name the metadata pretends the files were uploaded to.
    #[arg(long, default_value = "imgflow-local")]
    bucket: String,
    /// Images processed at once (default: the number of cores).
    #[arg(long, short)]
    jobs: Option<usize>,
}

/// How one file ended.
enum Outcome {
    Succeeded(String),
    Rejected(String),
    Failed(String),
}

pub async fn run(args: ProcessArgs) -> Result<u8> {
    let config = Arc::new(StepConfig::from_env()?);
    let files = collect_files(&args.paths)?;
    if files.is_empty() {
        bail!(
            "no image files found in {}",
            args.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let out = Arc::new(args.out);
    let bucket = Arc::new(args.bucket);
    let mut outcomes = futures::stream::iter(output_names(&files).into_iter().zip(files))
        .map(|(name, file)| {
            let (config, out, bucket) = (config.clone(), out.clone(), bucket.clone());
            tokio::task::spawn_blocking(move || process_file(&file, &name, &out, &bucket, &config))
        })
        .buffer_unordered(jobs);
    let (mut succeeded, mut rejected, mut failed) = (0, 0, 0);
    while let Some(outcome) = outcomes.next().await {
        match outcome.context("a processing task stopped")? {
            Outcome::Succeeded(line) => {
                succeeded += 1;
                println!("ok        {line}");
            }
            Outcome::Rejected(line) => {
                rejected += 1;
                println!("REJECTED  {line}");
            }
            Outcome::Failed(line) => {
                failed += 1;
                println!("FAILED    {line}");
            }
        }
    }
    println!("{succeeded} succeeded, {rejected} rejected, {failed} failed; output in {}", out.display());
    Ok(if rejected + failed == 0 { 0 } else { 1 })
}

fn process_file(file: &Path, name: &str, out: &Path, bucket: &str, config: &StepConfig) -> Outcome {
    let started = Instant::now();
    let shown = file.display();
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(error) => return Outcome::Failed(format!("{shown}: cannot read: {error}")),
    };
    let modified = std::fs::metadata(file)
        .and_then(|m| m.modified())
        .map(chrono::DateTime::from)
        .unwrap_or_else(|_| chrono::Utc::now());
    let object = StoredObject {
        bucket: bucket.to_owned(),
        key: format!("uploads/{}", file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
        size: bytes.len() as u64,
        etag: None,
        version_id: None,
        sequencer: None,
        request_id: None,
        reason: "PutObject".into(),
        time: modified,
        region: "local".into(),
        account: "000000000000".into(),
    };
    let event = object_created_event(&object, "local");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (request, renditions, summary) = match process_bytes(&event, &bytes, config) {
        Ok(processed) => {
            let sizes = processed
                .renditions
                .iter()
                .map(|r| format!("{} {}×{}", r.name, r.width, r.height))
                .collect::<Vec<_>>()
                .join(", ");
            let summary = format!(
                "{} {}×{}, {sizes}",
                processed.image.format.name(),
                processed.image.width,
                processed.image.height
            );
            (processed.record_request(None), processed.renditions, summary)
        }
        Err(error) if error.is_rejection() => {
            let request = RecordRequest::Rejected {
                event: serde_json::to_value(&event).unwrap_or_default(),
                error: CaughtError {
                    error: error.asl_name().to_owned(),
                    cause: Some(error.to_lambda_error().to_string()),
                },
                execution_arn: None,
            };
            (request, Vec::new(), format!("{}: {error}", error.asl_name()))
        }
        Err(error) => return Outcome::Failed(format!("{shown}: {}: {error}", error.asl_name())),
    };
    let record = match build_record(&request, config, &now) {
        Ok(record) => record,
        Err(error) => return Outcome::Failed(format!("{shown}: {}: {error}", error.asl_name())),
    };
    let files: Vec<(String, Vec<u8>)> =
        renditions.into_iter().map(|r| (format!("{}.{}", r.name, r.format.extension()), r.bytes)).collect();
    if let Err(error) = write_atomically(&out.join(name), &record, files) {
        return Outcome::Failed(format!("{shown}: {error:#}"));
    }
    let line = format!("{shown} → {}/: {summary} ({} ms)", out.join(name).display(), started.elapsed().as_millis());
    match record.status {
        imgflow_steps::metadata::ImageStatus::Succeeded => Outcome::Succeeded(line),
        _ => Outcome::Rejected(line),
    }
}

/// Writes the image's folder next to its final place, then swaps it in: a crash never leaves a
/// half-written folder behind under the final name.
fn write_atomically(dir: &Path, record: &ImageRecord, files: Vec<(String, Vec<u8>)>) -> Result<()> {
    let parent = dir.parent().context("output folder has no parent")?;
    let staging =
        tempfile::Builder::new().prefix(".imgflow-").tempdir_in(parent).context("creating a staging folder")?;
    for (name, bytes) in files {
        std::fs::write(staging.path().join(&name), bytes).with_context(|| format!("writing {name}"))?;
    }
    let json = serde_json::to_vec_pretty(record).context("encoding metadata.json")?;
    std::fs::write(staging.path().join("metadata.json"), json).context("writing metadata.json")?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir).with_context(|| format!("moving the output into {}", dir.display()))?;
    Ok(())
}

/// Files named explicitly, and image files found in folders (recursively, sorted, hidden ones
/// skipped).
pub(crate) fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if metadata.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            walk(&path, files)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            files.push(path);
        }
    }
    Ok(())
}

/// One output folder per file, named after its stem; later duplicates get `-2`, `-3`, ….
fn output_names(files: &[PathBuf]) -> Vec<String> {
    let mut used = HashSet::new();
    files
        .iter()
        .map(|file| {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "image".into());
            let mut name = stem.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{stem}-{n}");
                n += 1;
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_stems_get_distinct_folders() {
        let files = vec![
            PathBuf::from("a/x.jpg"),
            PathBuf::from("b/x.png"),
            PathBuf::from("c/y.jpg"),
            PathBuf::from("d/x.gif"),
        ];
        assert_eq!(output_names(&files), vec!["x", "x-2", "y", "x-3"]);
    }

    #[test]
    fn folders_yield_their_images_sorted_and_skip_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.JPG", "a.png", "notes.txt", ".hidden.jpg"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/c.webp"), b"x").unwrap();
        let names: Vec<String> = collect_files(&[dir.path().to_owned()])
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["a.png", "b.JPG", "sub/c.webp"]);
    }
}
