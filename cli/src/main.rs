//! `imgflow`: the one command users run.

mod asl;
mod bench;
mod client;
mod executions;
mod images;
mod process;
mod replay;
mod serve;
mod table;
mod upload;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: imgflow_steps::memory::HugePageAllocator = imgflow_steps::memory::HugePageAllocator;

#[derive(Parser)]
#[command(
    name = "imgflow",
    version,
    about = "Image upload-and-processing pipeline: AWS Step Functions and a local twin"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run validate → read-exif → resize on local files or folders (no AWS, no S3).
    Process(process::ProcessArgs),
    /// Run the local twin: upload API, S3, Step Functions and console on one address.
    Serve(serve::ServeArgs),
    /// Validate and run Amazon States Language definitions with the local engine.
    #[command(subcommand)]
    Asl(asl::AslCommand),
    /// Time the resize step's own code on local photos (benchmarks, sizing Lambda memory).
    Bench(bench::BenchArgs),
    /// Upload images to the twin (default) or to the deployed API (--aws).
    Upload(upload::UploadArgs),
    /// List, inspect and watch the pipeline's executions.
    Executions(executions::ExecutionsArgs),
    /// Replay failed executions (redrive or restart), one or in bulk.
    Replay(replay::ReplayArgs),
    /// Read the metadata of processed images.
    Images(images::ImagesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Process(args) => process::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Asl(command) => asl::run(command).await,
            Command::Bench(args) => bench::run(args),
            Command::Upload(args) => upload::run(args).await,
            Command::Executions(args) => executions::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::Images(args) => images::run(args).await,
        }
    });
    match code {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
