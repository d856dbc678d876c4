//! Persistence: the [`HistoryStore`] trait, an in-memory store and a SQLite store.
//!
//! Besides state machines, executions and their history events, a store keeps *step records*:
//! for each state that finished (succeeded, or failed into a Catch), its output, where it went
//! and what it assigned. Resuming after a restart and redriving replay an execution through
//! these records, so that finished work is not done twice.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, mpsc};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::history::{EventType, HistoryEvent};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("history writer: {0}")]
    Writer(String),
    /// A batch that starts an execution found one with its ARN stored already.
    #[error("an execution with this ARN is stored already: {0}")]
    ExecutionExists(String),
}

/// The status of an execution, as DescribeExecution names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
    PendingRedrive,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
            ExecutionStatus::PendingRedrive => "PENDING_REDRIVE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RUNNING" => ExecutionStatus::Running,
            "SUCCEEDED" => ExecutionStatus::Succeeded,
            "FAILED" => ExecutionStatus::Failed,
            "TIMED_OUT" => ExecutionStatus::TimedOut,
            "ABORTED" => ExecutionStatus::Aborted,
            "PENDING_REDRIVE" => ExecutionStatus::PendingRedrive,
            _ => return None,
        })
    }

    /// Whether the execution has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecutionStatus::Running | ExecutionStatus::PendingRedrive)
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateMachineRecord {
    pub arn: String,
    pub name: String,
    /// The definition text as registered.
    pub definition: String,
    pub role_arn: String,
    pub creation_date: DateTime<Utc>,
}

/// An execution as DescribeExecution shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    /// The input as JSON text.
    pub input: String,
    /// The output as JSON text (SUCCEEDED only).
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub start_date: DateTime<Utc>,
    pub stop_date: Option<DateTime<Utc>>,
    pub redrive_count: u32,
    pub redrive_date: Option<DateTime<Utc>>,
}

/// What a finished state produced, for replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The state's output as JSON text (as its StateExited event shows it).
    pub output: String,
    /// The next state, or `None` when the state ended its machine.
    pub next: Option<String>,
    /// Variables the state assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assigned: Option<Map<String, Value>>,
}

/// What one write brings: new events, new step records (keyed by their position) and, when the
/// execution's status changes, its record.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub events: Vec<HistoryEvent>,
    pub steps: Vec<(String, StepRecord)>,
    pub execution: Option<ExecutionRecord>,
    /// The batch starts its execution: the store refuses it ([`StoreError::ExecutionExists`],
    /// writing nothing of it) when an execution with its ARN is stored already. The check is
    /// the store's, in the write itself, so that a start costs no read before its write.
    pub starts_execution: bool,
}

/// Where executions and their history live. Implementations are called from async tasks and
/// must be quick (SQLite on a local disk is).
pub trait HistoryStore: Send + Sync {
    fn put_state_machine(&self, record: &StateMachineRecord) -> Result<(), StoreError>;
    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError>;
    /// Forgets a state machine (its executions stay).
    fn delete_state_machine(&self, arn: &str) -> Result<(), StoreError>;
    /// Inserts or replaces an execution.
    fn put_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError>;
    fn execution(&self, execution_arn: &str) -> Result<Option<ExecutionRecord>, StoreError>;
    /// Executions, newest first, optionally only those of one state machine and in one status.
    fn executions(
        &self,
        state_machine_arn: Option<&str>,
        status: Option<ExecutionStatus>,
    ) -> Result<Vec<ExecutionRecord>, StoreError>;
    /// Writes a batch (events, step records and the execution record) atomically.
    fn append(&self, execution_arn: &str, batch: Batch) -> Result<(), StoreError>;
    /// Writes the batches of several executions (`(execution ARN, batch)`, in order) atomically.
    /// The default writes them one by one (copying each), for stores whose writes are cheap.
    fn append_all(&self, batches: &[(String, Batch)]) -> Result<(), StoreError> {
        batches.iter().try_for_each(|(execution_arn, batch)| self.append(execution_arn, batch.clone()))
    }
    /// Whether each write costs enough (a commit) that the engine should group the writes of
    /// concurrent executions: it then hands every batch to one writer thread, which writes all
    /// the batches waiting at that moment with [`HistoryStore::append_all`] (group commit).
    fn groups_writes(&self) -> bool {
        false
    }
    /// Events in id order.
    fn events(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, StoreError>;
    fn steps(&self, execution_arn: &str) -> Result<HashMap<String, StepRecord>, StoreError>;
}

/// Everything in memory (lost at exit).
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    state_machines: Vec<StateMachineRecord>,
    executions: Vec<ExecutionRecord>,
    events: HashMap<String, Vec<HistoryEvent>>,
    steps: HashMap<String, HashMap<String, StepRecord>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HistoryStore for MemoryStore {
    fn put_state_machine(&self, record: &StateMachineRecord) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.state_machines.retain(|s| s.arn != record.arn);
        inner.state_machines.push(record.clone());
        Ok(())
    }

    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        Ok(self.lock().state_machines.clone())
    }

    fn delete_state_machine(&self, arn: &str) -> Result<(), StoreError> {
        self.lock().state_machines.retain(|s| s.arn != arn);
        Ok(())
    }

    fn put_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        self.append(&record.execution_arn, Batch { execution: Some(record.clone()), ..Batch::default() })
    }

    fn execution(&self, execution_arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        Ok(self.lock().executions.iter().find(|e| e.execution_arn == execution_arn).cloned())
    }

    fn executions(
        &self,
        state_machine_arn: Option<&str>,
        status: Option<ExecutionStatus>,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .executions
            .iter()
            .rev()
            .filter(|e| state_machine_arn.is_none_or(|arn| e.state_machine_arn == arn))
            .filter(|e| status.is_none_or(|status| e.status == status))
            .cloned()
            .collect())
    }

    fn append(&self, execution_arn: &str, batch: Batch) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(record) = batch.execution {
            match inner.executions.iter_mut().find(|e| e.execution_arn == record.execution_arn) {
                Some(_) if batch.starts_execution => return Err(StoreError::ExecutionExists(record.execution_arn)),
                Some(existing) => *existing = record,
                None => inner.executions.push(record),
            }
        }
        if !batch.events.is_empty() {
            match inner.events.get_mut(execution_arn) {
                Some(list) => list.extend(batch.events),
                None => {
                    inner.events.insert(execution_arn.to_owned(), batch.events);
                }
            }
        }
        if !batch.steps.is_empty() {
            inner.steps.entry(execution_arn.to_owned()).or_default().extend(batch.steps);
        }
        Ok(())
    }

    fn events(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        let mut events = self.lock().events.get(execution_arn).cloned().unwrap_or_default();
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    fn steps(&self, execution_arn: &str) -> Result<HashMap<String, StepRecord>, StoreError> {
        Ok(self.lock().steps.get(execution_arn).cloned().unwrap_or_default())
    }
}

/// SQLite, in WAL mode. Writes go through one connection and reads through another, so that a
/// reader never waits for a commit in progress (WAL lets readers see the last commit meanwhile).
/// A file's WAL is checkpointed by a thread of its own (see [`Checkpointer`]).
pub struct SqliteStore {
    writer: Mutex<Connection>,
    /// `None` for a private in-memory database, which one connection alone can see.
    reader: Option<Mutex<Connection>>,
    /// `None` for a private in-memory database, which has no WAL.
    checkpointer: Option<Checkpointer>,
}

/// Checkpoints the WAL into the database file on a thread and connection of its own, every
/// [`CHECKPOINT_EVERY_COMMITS`] commits. SQLite's automatic checkpoint runs inside the commit
/// that crosses its threshold: that commit copies the whole WAL to the database file and syncs
/// both, which held the caller (a StartExecution request) for milliseconds. A PASSIVE
/// checkpoint on another connection runs beside the commits instead; the writer starts the WAL
/// again from its beginning once a checkpoint has copied all of it.
struct Checkpointer {
    commits: AtomicU64,
    /// Asks the thread for a checkpoint; dropped (ending the thread) with the store.
    requests: Option<mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the checkpointer runs: a commit of small5 writes 2–5 pages of 4 KiB, so the WAL
/// stays at a few thousand pages.
const CHECKPOINT_EVERY_COMMITS: u64 = 1000;

/// The writer's own automatic checkpoint stays as a backstop, for WALs that grow faster than
/// the checkpointer runs (large commits): in pages.
const AUTOCHECKPOINT_PAGES: i64 = 10_000;

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        // One request waiting is enough: requests made while a checkpoint runs are merged.
        let (requests, received) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("imgflow-checkpoint".to_owned())
            .spawn(move || {
                while received.recv().is_ok() {
                    let checkpoint = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(error) = checkpoint {
                        tracing::warn!(%error, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(|e| StoreError::Writer(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer { commits: AtomicU64::new(0), requests: Some(requests), thread: Some(thread) })
    }

    /// Counts a commit; every [`CHECKPOINT_EVERY_COMMITS`]th asks for a checkpoint.
    fn committed(&self) {
        if (self.commits.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(CHECKPOINT_EVERY_COMMITS)
            && let Some(requests) = &self.requests
        {
            // Full: a checkpoint is asked for already.
            let _ = requests.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the checkpoint thread panicked");
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// The layout [`SCHEMA`] creates, kept in `PRAGMA user_version`. Files of earlier layouts (0:
/// no version was recorded) are migrated when opened; see [`migrate`].
const LAYOUT: i64 = 3;

/// What a commit costs is mostly the pages it rewrites (each is written whole to the WAL), so the
/// layout keeps the rows of one commit on few pages:
///
/// - An execution's row is keyed by its `seq`, its number in listing order (the rowid, so new
///   executions go to the end of the table); the ARN finds it through the table's one index. Its
///   start and, a moment later, its end usually rewrite the same last page.
/// - Events and step records are filed under the execution's `seq` rather than its ARN, so their
///   rows too are appended at the end of their B-trees.
/// - The events of one write are one row of `history_batches` (see [`encode_events`]), keyed by
///   `seq << 32 | the batch's lowest event id`. The rows of a commit are inserted in key order:
///   in queue order, the end of one execution landed before the start of the next, and SQLite
///   rebalanced the last pages of the tree on every commit instead of appending to the last one.
///
/// `status` repeats the record's status so that listings filter without parsing every record.
///
/// Measured on small5 (each commit holding one execution's end and the next one's start): 9.2
/// WAL pages of 4 KiB per commit with a row per event, executions keyed by ARN and indexed by
/// state machine; 4.x pages this way.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS state_machines (
    arn TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
    seq INTEGER PRIMARY KEY, arn TEXT NOT NULL UNIQUE, state_machine_arn TEXT NOT NULL, status TEXT NOT NULL,
    record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history_batches (
    key INTEGER PRIMARY KEY, events TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS step_records (
    execution INTEGER NOT NULL, key TEXT NOT NULL, step TEXT NOT NULL,
    PRIMARY KEY (execution, key)) WITHOUT ROWID;
";

/// Event ids take the low 32 bits of a history key.
const EVENT_ID_BITS: u32 = 32;

/// The history key of an execution's event (or of a batch, by its lowest event id).
fn history_key(seq: i64, event_id: u64) -> Result<i64, StoreError> {
    if event_id >= 1 << EVENT_ID_BITS {
        return Err(StoreError::Corrupt(format!("event id {event_id} is beyond 2^32")));
    }
    Ok((seq << EVENT_ID_BITS) | event_id as i64)
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// An event as stored: `[timestamp (nanoseconds since the epoch), type, id, previous id,
/// details]`, a JSON array rather than the API's object, whose field names and timestamp text
/// made each row about a third longer.
type StoredEvent<'a> = (i64, &'a str, u64, u64, &'a Map<String, Value>);

/// [`StoredEvent`] as read back.
type ReadEvent = (i64, String, u64, u64, Map<String, Value>);

/// The events of one batch as one `history_batches` row: a JSON array of [`StoredEvent`]s.
fn encode_events(events: &[HistoryEvent]) -> Result<String, StoreError> {
    let stored = events
        .iter()
        .map(|event| {
            let nanos = event.timestamp.timestamp_nanos_opt().ok_or_else(|| {
                StoreError::Corrupt(format!("event {} has a timestamp beyond 2262: {}", event.id, event.timestamp))
            })?;
            Ok((nanos, event.event_type.as_str(), event.id, event.previous_event_id, &event.details))
        })
        .collect::<Result<Vec<StoredEvent<'_>>, StoreError>>()?;
    to_json(&stored)
}

fn decode_events(text: &str) -> Result<impl Iterator<Item = HistoryEvent>, StoreError> {
    let stored: Vec<ReadEvent> = from_json(text)?;
    Ok(stored.into_iter().map(|(nanos, event_type, id, previous_event_id, details)| HistoryEvent {
        timestamp: DateTime::from_timestamp_nanos(nanos),
        event_type: EventType(event_type),
        id,
        previous_event_id,
        details,
    }))
}

impl SqliteStore {
    /// Opens (creating or migrating if needed) a database file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let writer = SqliteStore::prepare(Connection::open(&path)?)?;
        // Opened after the writer has switched the file to WAL and created the schema.
        let reader = Connection::open(&path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        let checkpointer = Checkpointer::start(path.as_ref())?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            reader: Some(Mutex::new(reader)),
            checkpointer: Some(checkpointer),
        })
    }

    /// A private in-memory database (for tests and benchmarks).
    pub fn in_memory() -> Result<Self, StoreError> {
        let writer = SqliteStore::prepare(Connection::open_in_memory()?)?;
        Ok(SqliteStore { writer: Mutex::new(writer), reader: None, checkpointer: None })
    }

    fn prepare(mut connection: Connection) -> Result<Connection, StoreError> {
        // WAL with synchronous=NORMAL: a commit survives a process crash (it is in the WAL
        // file); only an OS crash can lose the last commits.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints are the checkpointer's (see `Checkpointer`); this is the backstop.
        connection.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let layout: i64 = transaction.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if layout > LAYOUT {
            return Err(StoreError::Corrupt(format!(
                "the database has layout {layout}, newer than this program's ({LAYOUT})"
            )));
        }
        if layout < LAYOUT {
            migrate(&transaction)?;
            transaction.pragma_update(None, "user_version", LAYOUT)?;
        }
        transaction.commit()?;
        Ok(connection)
    }

    fn committed(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.committed();
        }
    }

    fn write(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `read` on the read connection (the write connection for an in-memory database).
    fn read<T>(&self, read: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match &self.reader {
            Some(reader) => read(&reader.lock().unwrap_or_else(|p| p.into_inner())),
            None => read(&self.write()),
        }
    }
}

/// Brings a file of an earlier layout (or a new, empty one) to [`SCHEMA`], in the caller's
/// transaction. The earlier layouts, all with `executions (arn TEXT PRIMARY KEY,
/// state_machine_arn, seq, record)`:
/// 0. events and steps keyed by execution ARN, one row per event (`events`, `steps`);
/// 1. one `history` row per event keyed by `seq << 32 | id`, `step_records` keyed by `seq`;
/// 2. as 1, with `history_batches` rows of event objects and a `status` column.
fn migrate(transaction: &Connection) -> Result<(), StoreError> {
    if has_table(transaction, "executions")? {
        let status = if has_column(transaction, "executions", "status")? {
            "status"
        } else {
            "json_extract(record, '$.status')"
        };
        transaction.execute_batch(&format!(
            "ALTER TABLE executions RENAME TO old_executions;
             DROP INDEX IF EXISTS executions_by_machine;
             {SCHEMA}
             INSERT INTO executions (seq, arn, state_machine_arn, status, record)
                 SELECT seq, arn, state_machine_arn, {status}, record FROM old_executions ORDER BY seq;"
        ))?;
    } else {
        transaction.execute_batch(SCHEMA)?;
    }
    // Event rows of the earlier layouts, as (history key, events as the API writes them).
    let mut old_rows: Vec<(i64, String)> = Vec::new();
    let mut collect = |query: &str| -> Result<(), StoreError> {
        let mut statement = transaction.prepare(query)?;
        let rows = statement.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))?;
        for row in rows {
            old_rows.push(row?);
        }
        Ok(())
    };
    if has_table(transaction, "events")? {
        collect(
            "SELECT x.seq * 4294967296 + e.id, '[' || e.event || ']' FROM events e
                 JOIN old_executions x ON x.arn = e.execution_arn",
        )?;
        transaction.execute_batch(
            "INSERT OR REPLACE INTO step_records (execution, key, step)
                 SELECT x.seq, s.key, s.step FROM steps s JOIN old_executions x ON x.arn = s.execution_arn;
             DROP TABLE events;
             DROP TABLE steps;",
        )?;
    }
    if has_table(transaction, "history")? {
        collect("SELECT key, '[' || event || ']' FROM history")?;
        transaction.execute_batch("DROP TABLE history")?;
    }
    // Layout 2's batches: the same table, rows of event objects.
    collect("SELECT key, events FROM history_batches")?;
    transaction.execute_batch("DELETE FROM history_batches; DROP TABLE IF EXISTS old_executions;")?;
    old_rows.sort_unstable_by_key(|(key, _)| *key);
    let mut insert = transaction.prepare("INSERT INTO history_batches (key, events) VALUES (?1, ?2)")?;
    for (key, events) in old_rows {
        let events: Vec<HistoryEvent> = from_json(&events)?;
        insert.execute(params![key, encode_events(&events)?])?;
    }
    Ok(())
}

fn has_table(connection: &Connection, name: &str) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        params![name],
        |row| row.get(0),
    )?)
}

fn has_column(connection: &Connection, table: &str, column: &str) -> Result<bool, StoreError> {
    Ok(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        params![table, column],
        |row| row.get(0),
    )?)
}

/// Writes batches in one transaction; nothing is written when one of them fails.
fn write_batches<'a>(
    connection: &mut Connection,
    batches: impl IntoIterator<Item = (&'a str, &'a Batch)>,
) -> Result<(), StoreError> {
    let transaction = connection.transaction()?;
    let mut history_rows = Vec::new();
    for (execution_arn, batch) in batches {
        if let Some(row) = write_batch(&transaction, execution_arn, batch)? {
            history_rows.push(row);
        }
    }
    // In key order: see SCHEMA.
    history_rows.sort_unstable_by_key(|(key, _)| *key);
    let mut insert = transaction.prepare_cached("INSERT INTO history_batches (key, events) VALUES (?1, ?2)")?;
    for (key, events) in history_rows {
        insert.execute(params![key, events])?;
    }
    drop(insert);
    transaction.commit()?;
    Ok(())
}

/// Writes one batch's execution record and step records inside the caller's transaction, and
/// returns its history row (key and encoded events), if it has events, for the caller to insert.
fn write_batch(
    connection: &Connection,
    execution_arn: &str,
    batch: &Batch,
) -> Result<Option<(i64, String)>, StoreError> {
    let seq = match &batch.execution {
        // Inserts an execution (SQLite numbers it after the others: listing order) or updates
        // its record; a start only inserts.
        Some(record) => {
            let sql = if batch.starts_execution {
                "INSERT INTO executions (arn, state_machine_arn, status, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (arn) DO NOTHING RETURNING seq"
            } else {
                "INSERT INTO executions (arn, state_machine_arn, status, record) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (arn) DO UPDATE SET status = excluded.status, record = excluded.record
                 RETURNING seq"
            };
            let parameters =
                params![record.execution_arn, record.state_machine_arn, record.status.as_str(), to_json(record)?];
            connection
                .prepare_cached(sql)?
                .query_row(parameters, |row| row.get(0))
                .optional()?
                .ok_or_else(|| StoreError::ExecutionExists(record.execution_arn.clone()))?
        }
        None if batch.events.is_empty() && batch.steps.is_empty() => return Ok(None),
        None => execution_seq(connection, execution_arn)?
            .ok_or_else(|| StoreError::Corrupt(format!("history for an execution never stored: {execution_arn}")))?,
    };
    let mut insert_step =
        connection.prepare_cached("INSERT OR REPLACE INTO step_records (execution, key, step) VALUES (?1, ?2, ?3)")?;
    for (key, step) in &batch.steps {
        insert_step.execute(params![seq, key, to_json(step)?])?;
    }
    match batch.events.iter().map(|event| event.id).min() {
        Some(first) => Ok(Some((history_key(seq, first)?, encode_events(&batch.events)?))),
        None => Ok(None),
    }
}

/// The `seq` of a stored execution.
fn execution_seq(connection: &Connection, execution_arn: &str) -> Result<Option<i64>, StoreError> {
    Ok(connection
        .prepare_cached("SELECT seq FROM executions WHERE arn = ?1")?
        .query_row(params![execution_arn], |row| row.get(0))
        .optional()?)
}

impl HistoryStore for SqliteStore {
    fn put_state_machine(&self, record: &StateMachineRecord) -> Result<(), StoreError> {
        self.write().execute(
            "INSERT OR REPLACE INTO state_machines (arn, record) VALUES (?1, ?2)",
            params![record.arn, to_json(record)?],
        )?;
        Ok(())
    }

    fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached("SELECT record FROM state_machines ORDER BY rowid")?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            rows.map(|r| from_json(&r?)).collect()
        })
    }

    fn delete_state_machine(&self, arn: &str) -> Result<(), StoreError> {
        self.write().execute("DELETE FROM state_machines WHERE arn = ?1", params![arn])?;
        Ok(())
    }

    fn put_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
        self.append(&record.execution_arn, Batch { execution: Some(record.clone()), ..Batch::default() })
    }

    fn execution(&self, execution_arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        self.read(|connection| {
            let text: Option<String> = connection
                .prepare_cached("SELECT record FROM executions WHERE arn = ?1")?
                .query_row(params![execution_arn], |row| row.get(0))
                .optional()?;
            text.map(|t| from_json(&t)).transpose()
        })
    }

    fn executions(
        &self,
        state_machine_arn: Option<&str>,
        status: Option<ExecutionStatus>,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.read(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT record FROM executions WHERE (?1 IS NULL OR state_machine_arn = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY seq DESC",
            )?;
            let rows = statement
                .query_map(params![state_machine_arn, status.map(ExecutionStatus::as_str)], |row| row.get::<_, String>(0))?;
            rows.map(|r| from_json(&r?)).collect()
        })
    }

    fn append(&self, execution_arn: &str, batch: Batch) -> Result<(), StoreError> {
        write_batches(&mut self.write(), [(execution_arn, &batch)])?;
        self.committed();
        Ok(())
    }

    fn append_all(&self, batches: &[(String, Batch)]) -> Result<(), StoreError> {
        write_batches(&mut self.write(), batches.iter().map(|(execution_arn, batch)| (execution_arn.as_str(), batch)))?;
        self.committed();
        Ok(())
    }

    fn groups_writes(&self) -> bool {
        true
    }

    fn events(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, StoreError> {
        self.read(|connection| {
            let Some(seq) = execution_seq(connection, execution_arn)? else {
                return Ok(Vec::new());
            };
            let mut statement = connection
                .prepare_cached("SELECT events FROM history_batches WHERE key >= ?1 AND key < ?2 ORDER BY key")?;
            let rows = statement
                .query_map(params![history_key(seq, 0)?, history_key(seq + 1, 0)?], |row| row.get::<_, String>(0))?;
            let mut events = Vec::new();
            for row in rows {
                events.extend(decode_events(&row?)?);
            }
            // Concurrent branches may have queued an event after a later one: batches can overlap.
            events.sort_by_key(|event| event.id);
            Ok(events)
        })
    }

    fn steps(&self, execution_arn: &str) -> Result<HashMap<String, StepRecord>, StoreError> {
        self.read(|connection| {
            let Some(seq) = execution_seq(connection, execution_arn)? else {
                return Ok(HashMap::new());
            };
            let mut statement = connection.prepare_cached("SELECT key, step FROM step_records WHERE execution = ?1")?;
            let rows =
                statement.query_map(params![seq], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
            rows.map(|r| {
                let (key, step) = r?;
                Ok((key, from_json(&step)?))
            })
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A RUNNING execution of `arn:sm` that starts now.
    fn running(execution_arn: &str, name: &str) -> ExecutionRecord {
        ExecutionRecord {
            execution_arn: execution_arn.into(),
            state_machine_arn: "arn:sm".into(),
            name: name.into(),
            status: ExecutionStatus::Running,
            input: "{}".into(),
            output: None,
            error: None,
            cause: None,
            start_date: Utc::now(),
            stop_date: None,
            redrive_count: 0,
            redrive_date: None,
        }
    }

    fn exercise(store: &dyn HistoryStore) {
        let record = running("arn:e1", "e1");
        store.put_execution(&record).unwrap();
        let mut second = record.clone();
        second.execution_arn = "arn:e2".into();
        store.put_execution(&second).unwrap();
        let mut done = record.clone();
        done.status = ExecutionStatus::Succeeded;
        store.put_execution(&done).unwrap();
        assert_eq!(store.execution("arn:e1").unwrap().unwrap().status, ExecutionStatus::Succeeded);
        let listed: Vec<String> =
            store.executions(Some("arn:sm"), None).unwrap().into_iter().map(|e| e.execution_arn).collect();
        assert_eq!(listed, vec!["arn:e2", "arn:e1"]);
        let events: Vec<HistoryEvent> = [2, 1]
            .into_iter()
            .map(|id| {
                let mut details = Map::new();
                details.insert("executionStartedEventDetails".into(), json!({"input": "{}"}));
                HistoryEvent {
                    timestamp: Utc::now(),
                    event_type: EventType::new("ExecutionStarted"),
                    id,
                    previous_event_id: id - 1,
                    details,
                }
            })
            .collect();
        store.append("arn:e1", Batch { events, ..Batch::default() }).unwrap();
        let ids: Vec<u64> = store.events("arn:e1").unwrap().iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![1, 2]);
        let step = StepRecord { output: r#"{"a":1}"#.to_owned(), next: Some("B".into()), assigned: None };
        store.append("arn:e1", Batch { steps: vec![("/A#0".to_owned(), step.clone())], ..Batch::default() }).unwrap();
        assert_eq!(store.steps("arn:e1").unwrap()["/A#0"], step);
        // A start under a stored ARN is refused whole.
        let restart = Batch {
            events: store.events("arn:e1").unwrap(),
            execution: Some(record.clone()),
            starts_execution: true,
            ..Batch::default()
        };
        assert!(matches!(store.append("arn:e1", restart), Err(StoreError::ExecutionExists(arn)) if arn == "arn:e1"));
        assert_eq!(store.execution("arn:e1").unwrap().unwrap().status, ExecutionStatus::Succeeded);
        assert_eq!(store.events("arn:e1").unwrap().len(), 2);
    }

    #[test]
    fn memory_store_works() {
        exercise(&MemoryStore::new());
    }

    /// Writes executions `arn:a` (RUNNING) and `arn:b` (SUCCEEDED) of `arn:sm` in an earlier
    /// layout: `schema` creates its tables, `insert_execution` (parameters: ARN, seq, record,
    /// status), `insert_event` and `insert_step` (ARN, seq, event id or step key, JSON text) are
    /// its statements. Then opens the file and checks that both executions read as they were
    /// written, and that a new one is listed first.
    fn check_migration(schema: &str, insert_execution: &str, insert_event: &str, insert_step: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let record = |arn: &str, status: ExecutionStatus| ExecutionRecord { status, ..running(arn, arn) };
        let executions = [("arn:a", 1, ExecutionStatus::Running), ("arn:b", 2, ExecutionStatus::Succeeded)];
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(schema).unwrap();
            for (arn, seq, status) in executions {
                let text = serde_json::to_string(&record(arn, status)).unwrap();
                old.execute(insert_execution, params![arn, seq, text, status.as_str()]).unwrap();
                for id in 1..=3u64 {
                    let event = json!({"timestamp": Utc::now(), "type": "PassStateEntered", "id": id,
                        "previousEventId": id - 1, "stateEnteredEventDetails": {"name": arn}});
                    old.execute(insert_event, params![arn, seq, id as i64, event.to_string()]).unwrap();
                }
                let step = json!({"output": format!("\"{arn}\""), "next": null});
                old.execute(insert_step, params![arn, seq, "/A#0", step.to_string()]).unwrap();
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        for (arn, _, _) in executions {
            let events = store.events(arn).unwrap();
            assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2, 3]);
            assert_eq!(events[0].detail().unwrap()["name"], arn);
            assert_eq!(store.steps(arn).unwrap()["/A#0"].output, format!("\"{arn}\""));
        }
        let running: Vec<String> = store
            .executions(Some("arn:sm"), Some(ExecutionStatus::Running))
            .unwrap()
            .into_iter()
            .map(|e| e.execution_arn)
            .collect();
        assert_eq!(running, vec!["arn:a"]);
        // New executions are numbered after the migrated ones; their history lands after theirs.
        let mut third = store.execution("arn:a").unwrap().unwrap();
        third.execution_arn = "arn:c".into();
        store.put_execution(&third).unwrap();
        let event = store.events("arn:a").unwrap().remove(0);
        store.append("arn:c", Batch { events: vec![event], ..Batch::default() }).unwrap();
        assert_eq!(store.events("arn:c").unwrap().len(), 1);
        let listed: Vec<String> = store.executions(None, None).unwrap().into_iter().map(|e| e.execution_arn).collect();
        assert_eq!(listed, vec!["arn:c", "arn:b", "arn:a"]);
        // Opening the migrated file again changes nothing.
        drop(store);
        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(reopened.events("arn:b").unwrap().len(), 3);
        assert_eq!(reopened.executions(None, Some(ExecutionStatus::Succeeded)).unwrap()[0].execution_arn, "arn:b");
    }

    #[test]
    fn a_database_of_the_first_layout_is_migrated_when_opened() {
        check_migration(
            "CREATE TABLE executions (arn TEXT PRIMARY KEY, state_machine_arn TEXT NOT NULL, seq INTEGER NOT NULL,
                 record TEXT NOT NULL);
             CREATE TABLE events (execution_arn TEXT NOT NULL, id INTEGER NOT NULL, event TEXT NOT NULL,
                 PRIMARY KEY (execution_arn, id)) WITHOUT ROWID;
             CREATE TABLE steps (execution_arn TEXT NOT NULL, key TEXT NOT NULL, step TEXT NOT NULL,
                 PRIMARY KEY (execution_arn, key)) WITHOUT ROWID;",
            "INSERT INTO executions SELECT ?1, 'arn:sm', ?2, ?3 WHERE ?4 IS NOT NULL",
            "INSERT INTO events SELECT ?1, ?3, ?4 WHERE ?2 IS NOT NULL",
            "INSERT INTO steps SELECT ?1, ?3, ?4 WHERE ?2 IS NOT NULL",
        );
    }

    #[test]
    fn a_database_of_one_row_per_event_is_migrated_when_opened() {
        check_migration(
            "CREATE TABLE executions (arn TEXT PRIMARY KEY, state_machine_arn TEXT NOT NULL, seq INTEGER NOT NULL,
                 record TEXT NOT NULL);
             CREATE INDEX executions_by_machine ON executions (state_machine_arn, seq);
             CREATE TABLE history (key INTEGER PRIMARY KEY, event TEXT NOT NULL);
             CREATE TABLE step_records (execution INTEGER NOT NULL, key TEXT NOT NULL, step TEXT NOT NULL,
                 PRIMARY KEY (execution, key)) WITHOUT ROWID;",
            "INSERT INTO executions SELECT ?1, 'arn:sm', ?2, ?3 WHERE ?4 IS NOT NULL",
            "INSERT INTO history SELECT ?2 * 4294967296 + ?3, ?4 WHERE ?1 IS NOT NULL",
            "INSERT INTO step_records SELECT ?2, ?3, ?4 WHERE ?1 IS NOT NULL",
        );
    }

    #[test]
    fn a_database_of_batches_of_event_objects_is_migrated_when_opened() {
        check_migration(
            "CREATE TABLE executions (arn TEXT PRIMARY KEY, state_machine_arn TEXT NOT NULL, seq INTEGER NOT NULL,
                 record TEXT NOT NULL, status TEXT NOT NULL);
             CREATE INDEX executions_by_machine ON executions (state_machine_arn, seq);
             CREATE TABLE history_batches (key INTEGER PRIMARY KEY, events TEXT NOT NULL);
             CREATE TABLE step_records (execution INTEGER NOT NULL, key TEXT NOT NULL, step TEXT NOT NULL,
                 PRIMARY KEY (execution, key)) WITHOUT ROWID;",
            "INSERT INTO executions VALUES (?1, 'arn:sm', ?2, ?3, ?4)",
            "INSERT INTO history_batches SELECT ?2 * 4294967296 + ?3, '[' || ?4 || ']' WHERE ?1 IS NOT NULL",
            "INSERT INTO step_records SELECT ?2, ?3, ?4 WHERE ?1 IS NOT NULL",
        );
    }

    #[test]
    fn a_database_of_a_newer_layout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("newer.db");
        Connection::open(&path).unwrap().pragma_update(None, "user_version", LAYOUT + 1).unwrap();
        assert!(matches!(SqliteStore::open(&path), Err(StoreError::Corrupt(_))));
    }

    fn event(id: u64) -> HistoryEvent {
        HistoryEvent {
            timestamp: Utc::now(),
            event_type: EventType::new("PassStateEntered"),
            id,
            previous_event_id: id - 1,
            details: Map::new(),
        }
    }

    #[test]
    fn batches_of_one_commit_and_overlapping_batches_read_in_id_order() {
        let store = SqliteStore::in_memory().unwrap();
        let record = |arn: &str| running(arn, arn);
        let start = |arn: &str| Batch { events: vec![event(1)], execution: Some(record(arn)), ..Batch::default() };
        store.append_all(&[("arn:e1".to_owned(), start("arn:e1"))]).unwrap();
        // As the journal groups them: the next execution's start, then the first one's end, whose
        // events overlap a later batch (concurrent branches queue ids out of order).
        let end = Batch { events: vec![event(5), event(2), event(3)], ..Batch::default() };
        store.append_all(&[("arn:e2".to_owned(), start("arn:e2")), ("arn:e1".to_owned(), end)]).unwrap();
        store.append("arn:e1", Batch { events: vec![event(4), event(6)], ..Batch::default() }).unwrap();
        let ids = |arn: &str| store.events(arn).unwrap().iter().map(|e| e.id).collect::<Vec<_>>();
        assert_eq!(ids("arn:e1"), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(ids("arn:e2"), vec![1]);
    }

    #[test]
    fn history_of_an_unknown_execution_is_refused_and_reads_empty() {
        let store = SqliteStore::in_memory().unwrap();
        let step = StepRecord { output: "1".to_owned(), next: None, assigned: None };
        let batch = Batch { steps: vec![("/A#0".to_owned(), step)], ..Batch::default() };
        assert!(matches!(store.append("arn:nobody", batch), Err(StoreError::Corrupt(_))));
        assert!(store.events("arn:nobody").unwrap().is_empty());
        assert!(store.steps("arn:nobody").unwrap().is_empty());
    }

    #[test]
    fn the_wal_is_checkpointed_beside_the_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.db");
        let store = SqliteStore::open(&path).unwrap();
        let record = |n: u64| running(&format!("arn:e{n}"), &format!("e{n}"));
        let wal_size = || std::fs::metadata(dir.path().join("engine.db-wal")).map_or(0, |m| m.len());
        let rounds = 4;
        let mut largest_round = 0;
        for round in 0..rounds {
            let before = wal_size();
            for n in 0..CHECKPOINT_EVERY_COMMITS {
                store.put_execution(&record(round * CHECKPOINT_EVERY_COMMITS + n)).unwrap();
            }
            largest_round = largest_round.max(wal_size().saturating_sub(before));
            // The checkpointer was asked at the round's last commit: give it time to run.
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        // The WAL is begun again after each checkpoint, so it never holds much more than a
        // round's commits (without the checkpointer it would hold all of them: the writer's
        // own threshold is not reached).
        let size = wal_size();
        assert!(size > 0);
        assert!(size < 2 * largest_round, "WAL of {size} bytes after rounds of {largest_round}");
        drop(store);
        assert_eq!(SqliteStore::open(&path).unwrap().executions(None, None).unwrap().len(), 4000);
    }

    #[test]
    fn sqlite_store_works_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.db");
        exercise(&SqliteStore::open(&path).unwrap());
        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(reopened.events("arn:e1").unwrap().len(), 2);
    }
}
