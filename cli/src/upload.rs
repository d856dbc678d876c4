//! `imgflow upload PATH...`: images (files, or folders walked for images) uploaded concurrently
//! to the twin or the deployed API, with the imageId of each.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use imgflow_imaging::ImageFormat;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::Value;

use crate::client::{Backend, ClientArgs, ImageService, OutputFormat, UploadAccepted};
use crate::table;

#[derive(Args)]
pub struct UploadArgs {
    /// Image files, or folders to walk for images (by extension).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Uploads in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: u32,
    /// Wait until every image is processed, and show how it ended (exit code 1 unless all
    /// SUCCEEDED).
    #[arg(long)]
    wait: bool,
    /// With --wait: how long to wait for the last image (e.g. 90s, 5m).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    client: ClientArgs,
}

/// How one file went.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FileOutcome {
    path: PathBuf,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    accepted: Option<UploadAccepted>,
    /// With --wait: the image's final metadata status.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl FileOutcome {
    fn succeeded(&self, waited: bool) -> bool {
        self.error.is_none() && (!waited || self.status.as_deref() == Some("SUCCEEDED"))
    }
}

pub async fn run(args: UploadArgs) -> Result<u8> {
    let files = crate::process::collect_files(&args.paths)?;
    if files.is_empty() {
        bail!(
            "no image files in {}",
            args.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    let backend = Backend::connect(&args.client).await?;
    let progress = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} uploaded {msg}").context("the progress bar template")?,
    );
    let deadline = Instant::now() + args.timeout;
    let images = backend.images.as_ref();
    let mut outcomes: Vec<(usize, FileOutcome)> = futures::stream::iter(files.into_iter().enumerate())
        .map(|(index, path)| {
            let progress = progress.clone();
            async move {
                let mut outcome = upload_one(images, path).await;
                if args.wait
                    && let Some(accepted) = &outcome.accepted
                {
                    match wait_for_image(images, &accepted.image_id, deadline).await {
                        Ok(status) => outcome.status = Some(status),
                        Err(error) => outcome.error = Some(format!("{error:#}")),
                    }
                }
                progress.set_message(outcome.path.display().to_string());
                progress.inc(1);
                (index, outcome)
            }
        })
        .buffer_unordered(args.concurrency as usize)
        .collect()
        .await;
    progress.finish_and_clear();
    outcomes.sort_by_key(|(index, _)| *index);
    let outcomes: Vec<FileOutcome> = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
    print_outcomes(&outcomes, args.client.output, args.wait)?;
    let failed = outcomes.iter().filter(|o| !o.succeeded(args.wait)).count();
    eprintln!(
        "{} of {} uploaded{}",
        outcomes.iter().filter(|o| o.accepted.is_some()).count(),
        outcomes.len(),
        if args.wait { format!(", {} processed successfully", outcomes.len() - failed) } else { String::new() }
    );
    Ok(u8::from(failed > 0))
}

async fn upload_one(images: &dyn ImageService, path: PathBuf) -> FileOutcome {
    let result = async {
        let bytes = tokio::fs::read(&path).await.with_context(|| format!("reading {}", path.display()))?;
        let content_type = content_type(&path, &bytes)?;
        images.upload(bytes, content_type).await
    }
    .await;
    match result {
        Ok(accepted) => FileOutcome { path, accepted: Some(accepted), status: None, error: None },
        Err(error) => FileOutcome { path, accepted: None, status: None, error: Some(format!("{error:#}")) },
    }
}

/// The Content-Type to send: from the magic bytes when they name a format imgflow accepts,
/// else from the extension (so that a damaged file still reaches the pipeline, which rejects
/// it with a reason).
fn content_type(path: &Path, bytes: &[u8]) -> Result<&'static str> {
    if let Ok(format) = ImageFormat::sniff(bytes) {
        return Ok(format.content_type());
    }
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    Ok(match extension.as_deref() {
        Some("jpg" | "jpeg" | "jpe") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("gif") => "image/gif",
        Some("tif" | "tiff") => "image/tiff",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        Some("avif") => "image/avif",
        Some("bmp") => "image/bmp",
        _ => bail!("{} is not an image (neither its bytes nor its name say so)", path.display()),
    })
}

/// Polls the image until its processing has ended; returns its status.
async fn wait_for_image(images: &dyn ImageService, image_id: &str, deadline: Instant) -> Result<String> {
    loop {
        // The twin answers PROCESSING while the execution runs; the API answers 404 until the
        // metadata item is written.
        let status = images
            .image(image_id)
            .await?
            .and_then(|item| item.get("status").and_then(Value::as_str).map(str::to_owned));
        match status {
            Some(status) if status != "PROCESSING" => return Ok(status),
            _ if Instant::now() >= deadline => bail!("still processing when --timeout ran out"),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

fn print_outcomes(outcomes: &[FileOutcome], output: OutputFormat, waited: bool) -> Result<()> {
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(outcomes)?),
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = outcomes
                .iter()
                .map(|outcome| {
                    let result = match (&outcome.error, &outcome.status) {
                        (Some(error), _) => format!("error: {error}"),
                        (None, Some(status)) => status.clone(),
                        (None, None) => "accepted".to_owned(),
                    };
                    let image_id = outcome.accepted.as_ref().map_or("-", |a| a.image_id.as_str());
                    vec![outcome.path.display().to_string(), image_id.to_owned(), result]
                })
                .collect();
            let result_header = if waited { "STATUS" } else { "RESULT" };
            print!("{}", table::render(&["FILE", "IMAGE ID", result_header], &rows));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_comes_from_the_bytes_then_the_name() {
        let png = b"\x89PNG\r\n\x1a\n0000";
        assert_eq!(content_type(Path::new("photo.jpg"), png).unwrap(), "image/png");
        assert_eq!(content_type(Path::new("broken.JPG"), b"garbage").unwrap(), "image/jpeg");
        assert_eq!(content_type(Path::new("scan.tiff"), b"").unwrap(), "image/tiff");
        let error = content_type(Path::new("notes.txt"), b"hello").unwrap_err();
        assert!(error.to_string().contains("notes.txt is not an image"), "{error}");
    }
}
