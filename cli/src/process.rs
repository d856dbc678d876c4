//! `imgflow process`: the pipeline on local files.
use clap::Args;

#[derive(Args)]
pub struct ProcessArgs {}

pub async fn run(_args: ProcessArgs) -> anyhow::Result<u8> {
    Ok(0)
}
