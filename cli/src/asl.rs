//! `imgflow asl …`: validate and run ASL definitions with the engine.

use clap::Subcommand;

#[derive(Subcommand)]
pub enum AslCommand {}

pub async fn run(command: AslCommand) -> anyhow::Result<u8> {
    match command {}
}
