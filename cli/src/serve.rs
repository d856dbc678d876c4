//! `imgflow serve`: the local twin, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use imgflow_local::twin::{Twin, TwinConfig};
use imgflow_steps::StepConfig;
use tracing_subscriber::EnvFilter;

#[derive(Args)]
#[command(after_help = "\
Everything is served on one address: the upload API (POST /upload, GET /images/{id}, GET /images),
the S3 API (path-style, credentials test/test), the Step Functions API (X-Amz-Target) and the
console (/console/). The steps read the same IMGFLOW_* variables as the Lambda functions
(IMGFLOW_RENDITIONS, IMGFLOW_MAX_BYTES, IMGFLOW_MAX_PIXELS, IMGFLOW_KEEP_GPS, …).
Executions left running by a crash or kill resume at the next start on the same --data-dir.")]
pub struct ServeArgs {
    /// Where objects, executions and metadata are kept.
    #[arg(long, env = "IMGFLOW_DATA_DIR", default_value = ".imgflow")]
    data_dir: PathBuf,
    /// The address to listen on; other hosts can reach it only if you say so (e.g. 0.0.0.0:4566).
    #[arg(long, env = "IMGFLOW_ADDR", default_value = "127.0.0.1:4566")]
    addr: SocketAddr,
    /// The bucket whose `uploads/` start the pipeline.
    #[arg(long, default_value = "images")]
    bucket: String,
    /// Inject failures to try retries, failures and replays, e.g. "resize=TransientError*6"
    /// (the next 6 calls of resize fail). Steps: validate, read-exif, resize, write-metadata.
    #[arg(long, env = "IMGFLOW_FAULTS", default_value = "")]
    faults: String,
    /// Executions running at once [default: the number of cores].
    #[arg(long)]
    max_concurrent: Option<usize>,
    /// Open executions (running or waiting) beyond which uploads get 503 SlowDown.
    #[arg(long, default_value_t = 1000)]
    max_open: usize,
    /// The largest upload accepted by POST /upload, in bytes (API Gateway's is 10 MiB).
    #[arg(long, default_value_t = imgflow_local::twin::api::DEFAULT_UPLOAD_LIMIT)]
    upload_limit: usize,
    /// Log lines for people (text) or machines (json). RUST_LOG filters them.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

pub async fn run(args: ServeArgs) -> Result<u8> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,s3s=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    // The twin renders image after image, as a warm Lambda does: keep their buffers for reuse.
    imgflow_steps::memory::reuse_freed_memory();
    let mut config = TwinConfig::new(&args.data_dir);
    config.addr = args.addr;
    config.bucket = args.bucket;
    config.faults = args.faults;
    config.max_open_executions = args.max_open;
    config.upload_limit = args.upload_limit;
    if let Some(max) = args.max_concurrent {
        config.max_concurrent_executions = max;
    }
    config.steps = StepConfig::from_env().context("reading the IMGFLOW_* settings of the steps")?;
    let twin = Twin::start(config).await.context("starting the twin")?;
    println!("imgflow twin on {url}  (console: {url}/console/, data: {})", args.data_dir.display(), url = twin.url());
    wait_for_signal().await?;
    tracing::info!("shutting down");
    twin.shutdown().await;
    Ok(0)
}

async fn wait_for_signal() -> Result<()> {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listening for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
