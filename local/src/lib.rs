//! The local twin: everything `imgflow serve` runs on one machine.
//!
//! - [`s3`]: the S3-compatible endpoint (s3s in front of the twin's own object store on disk),
//!   speaking the real S3 protocol so that aws-sdk-s3 and `aws s3` work against it unchanged.
//! - [`metadata_sqlite`]: the metadata store, SQLite behind the same trait as DynamoDB.
//! - [`functions`]: the step handlers as the engine's task invoker, and the placeholder
//!   substitutions of the state machine.
//! - [`sfn`]: the Step Functions endpoint (AWS JSON 1.0) in front of the engine.
//! - [`twin`]: `imgflow serve`, all of the above on one address.

pub mod functions;
mod listener;
pub mod metadata_sqlite;
pub mod s3;
pub mod sfn;
pub mod twin;
