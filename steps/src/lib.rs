//! The Lambda steps of the imgflow state machine.
//!
//! Each step is a function from typed input to typed output or a [`StepError`] whose name is the
//! error the ASL matches. The pixel and EXIF logic lives in `imgflow-imaging`; this crate adds the
//! S3 and DynamoDB I/O, the metadata record, and the Lambda wiring of the thin binaries in
//! `src/bin/`.

mod aws;
pub mod config;
pub mod cpu_pool;
pub mod error;
pub mod event;
pub mod lambda;
pub mod memory;
pub mod metadata;
pub mod objects;
pub mod pipeline;
pub mod read_exif;
pub mod resize;
pub mod validate;
pub mod write_metadata;

pub use aws::https_client;
pub use config::StepConfig;
pub use error::StepError;
