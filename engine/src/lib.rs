//! An Amazon States Language interpreter with AWS Step Functions semantics.
//!
//! - [`Definition::parse`] / [`validate`]: parse and validate a definition, with diagnostics.
//! - [`Engine`]: register state machines, start, describe, list, stop and redrive executions,
//!   read their history, resume after a restart, and follow status changes.
//! - [`TaskInvoker`]: how Task states reach code; [`Clock`]: real or virtual time;
//!   [`HistoryStore`]: in memory or SQLite.
//!
//! See `docs/engine.md` for what is supported and how it differs from AWS.

pub mod clock;
pub mod context;
pub mod definition;
pub mod engine;
pub mod error;
mod executor;
pub mod history;
pub mod intrinsics;
pub mod invoker;
mod journal;
pub mod jsonata;
pub mod path;
pub mod redrive;
pub mod retry;
pub mod states;
pub mod store;
pub mod template;
pub mod validation;

pub use clock::{Clock, InstantClock, RealClock};
pub use definition::{Definition, QueryLanguage};
pub use engine::{Engine, EngineConfig, EngineError, ExecutionPage, HistoryPage, StartedExecution, StatusChange};
pub use error::Failure;
pub use executor::MAX_PAYLOAD_BYTES;
pub use history::{EventType, HistoryEvent};
pub use invoker::{Heartbeat, NoTasks, TaskError, TaskInvoker, TaskRequest, TaskTarget};
pub use store::{
    Batch, ExecutionRecord, ExecutionStatus, HistoryStore, MemoryStore, SqliteStore, StateMachineRecord, StoreError,
};
pub use validation::{Diagnostic, Severity, validate};
