//! Group commit: the writes of every running execution go through one [`Journal`].
//!
//! For a store whose writes are costly ([`HistoryStore::groups_writes`], SQLite: one commit per
//! write), batches are grouped. A caller that finds no write in progress writes its batch at
//! once, on its own thread: a lone start (a client starting executions one after the other)
//! then costs its commit and nothing more — no hand-off to another thread and back, each a
//! wake-up that a loaded machine may take long to schedule. Batches queued while a write is in
//! progress are left to a writer thread, which writes every batch waiting at that moment in
//! one transaction and answers each caller, until the queue is empty. Batches are written in
//! the order they were queued, so a caller that saw its batch committed knows that every batch
//! queued before it (by any execution) is durable too.
//!
//! For other stores (in memory) a batch is written at once, on the caller's thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::store::{Batch, HistoryStore, StoreError};

/// The most batches written in one transaction: bounds the transaction while keeping its cost
/// per batch low.
const MAX_GROUP: usize = 1024;

/// Where executions write their history.
pub(crate) struct Journal {
    store: Arc<dyn HistoryStore>,
    /// The queue shared with the writer thread, for stores that group writes.
    grouping: Option<Arc<Grouping>>,
}

struct Queued {
    execution_arn: String,
    batch: Batch,
    committed: Waiter,
}

/// Where the writer answers the caller of one batch.
type Waiter = oneshot::Sender<Result<(), StoreError>>;

/// What the callers and the writer thread share.
struct Grouping {
    state: Mutex<GroupState>,
    /// Tells the writer thread that the queue is its own ([`Writing::Thread`]) or that the
    /// journal is gone.
    handed_over: Condvar,
}

struct GroupState {
    /// Batches waiting for the write in progress to end. Empty when nobody writes.
    queue: Vec<Queued>,
    writing: Writing,
    /// The journal is dropped: the writer thread ends once the queue is written.
    closed: bool,
}

/// Who writes now.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writing {
    /// Nobody: the next caller writes its batch itself.
    Idle,
    /// A caller writes its own batch; batches queued meanwhile go to the writer thread after it.
    Caller,
    /// The writer thread writes the queue until it is empty.
    Thread,
    /// The writer thread is gone (it panicked): every caller writes its own batch.
    NoThread,
}

impl Grouping {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Journal {
    /// A journal over `store`, with a writer thread when the store groups writes.
    pub fn new(store: Arc<dyn HistoryStore>) -> std::io::Result<Journal> {
        let grouping = if store.groups_writes() {
            let grouping = Arc::new(Grouping {
                state: Mutex::new(GroupState { queue: Vec::new(), writing: Writing::Idle, closed: false }),
                handed_over: Condvar::new(),
            });
            let (thread_store, thread_grouping) = (Arc::clone(&store), Arc::clone(&grouping));
            // The thread ends when the journal is dropped.
            std::thread::Builder::new()
                .name("imgflow-journal".to_owned())
                .spawn(move || write_groups(thread_store.as_ref(), &thread_grouping))?;
            Some(grouping)
        } else {
            None
        };
        Ok(Journal { store, grouping })
    }

    /// Writes a batch of one execution. The batch is written, or queued behind the write in
    /// progress, before this returns, so batches keep the order of the calls; the returned
    /// future completes when it is durable.
    pub fn append(&self, execution_arn: &str, batch: Batch) -> Commit {
        let Some(grouping) = &self.grouping else {
            return Commit::Done(Some(self.store.append(execution_arn, batch)));
        };
        let mut state = grouping.lock();
        match state.writing {
            Writing::Idle => state.writing = Writing::Caller,
            Writing::NoThread => {
                drop(state);
                return Commit::Done(Some(self.store.append(execution_arn, batch)));
            }
            Writing::Caller | Writing::Thread => {
                let (committed, receiver) = oneshot::channel();
                state.queue.push(Queued { execution_arn: execution_arn.to_owned(), batch, committed });
                return Commit::Queued(receiver);
            }
        }
        drop(state);
        let written = self.store.append(execution_arn, batch);
        // Still `Caller`: the thread only writes when handed the queue, so it cannot have died.
        let mut state = grouping.lock();
        if state.queue.is_empty() {
            state.writing = Writing::Idle;
        } else {
            state.writing = Writing::Thread;
            grouping.handed_over.notify_one();
        }
        Commit::Done(Some(written))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Some(grouping) = &self.grouping {
            grouping.lock().closed = true;
            grouping.handed_over.notify_one();
        }
    }
}

/// The writer thread: whenever a caller hands it the queue, one transaction for every batch
/// waiting, then the next group, until the queue is empty.
fn write_groups(store: &dyn HistoryStore, grouping: &Grouping) {
    // Should a write panic, callers write their own batches from then on.
    let _gone = ThreadGone(grouping);
    let mut state = grouping.lock();
    loop {
        while state.writing != Writing::Thread {
            if state.closed {
                return;
            }
            state = grouping.handed_over.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.queue.is_empty() {
            state.writing = Writing::Idle;
            continue;
        }
        let take = state.queue.len().min(MAX_GROUP);
        let group: Vec<Queued> = state.queue.drain(..take).collect();
        drop(state);
        write_group(store, group);
        state = grouping.lock();
    }
}

/// Marks the writer thread gone when it unwinds, answering the batches it leaves behind.
struct ThreadGone<'a>(&'a Grouping);

impl Drop for ThreadGone<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut state = self.0.lock();
            state.writing = Writing::NoThread;
            for queued in state.queue.drain(..) {
                let _ = queued.committed.send(Err(StoreError::Writer("the writer thread stopped".to_owned())));
            }
        }
    }
}

/// Writes a group of batches in one transaction and answers their callers.
fn write_group(store: &dyn HistoryStore, group: Vec<Queued>) {
    let (batches, waiters): (Vec<(String, Batch)>, Vec<Waiter>) =
        group.into_iter().map(|q| ((q.execution_arn, q.batch), q.committed)).unzip();
    match store.append_all(&batches) {
        Ok(()) => {
            for waiter in waiters {
                // A caller that stopped waiting (its execution was dropped) needs no answer.
                let _ = waiter.send(Ok(()));
            }
        }
        // The transaction was rolled back: write each batch alone, so that one bad batch
        // fails only its own caller.
        Err(_) => {
            for ((execution_arn, batch), waiter) in batches.into_iter().zip(waiters) {
                let _ = waiter.send(store.append(&execution_arn, batch));
            }
        }
    }
}

/// The commit of one batch.
pub(crate) enum Commit {
    /// Written already (`None` once the result was taken).
    Done(Option<Result<(), StoreError>>),
    /// Waiting for the writer thread.
    Queued(oneshot::Receiver<Result<(), StoreError>>),
}

impl Commit {
    /// Nothing to write.
    pub fn nothing() -> Commit {
        Commit::Done(Some(Ok(())))
    }
}

impl Future for Commit {
    type Output = Result<(), StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Commit::Done(result) => Poll::Ready(
                result.take().unwrap_or_else(|| Err(StoreError::Writer("commit polled after completion".to_owned()))),
            ),
            Commit::Queued(receiver) => Pin::new(receiver)
                .poll(cx)
                .map(|answer| answer.unwrap_or(Err(StoreError::Writer("the writer thread stopped".to_owned())))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::mpsc;

    use super::*;
    use crate::history::HistoryEvent;
    use crate::store::{ExecutionRecord, ExecutionStatus, MemoryStore, StateMachineRecord, StepRecord};

    /// A grouping store in memory that records the size of each write (1 for a batch written
    /// alone), holds the first write (telling when it is there) until released, and refuses
    /// every batch of the execution `bad`.
    #[derive(Default)]
    struct Recording {
        inner: MemoryStore,
        writes: Mutex<Vec<usize>>,
        hold_first: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
    }

    impl Recording {
        /// The store, a receiver told when the first write is held and a sender that releases it.
        fn holding() -> (Arc<Recording>, mpsc::Receiver<()>, mpsc::Sender<()>) {
            let (entered_tx, entered) = mpsc::channel();
            let (release, held) = mpsc::channel();
            let store = Recording { hold_first: Mutex::new(Some((entered_tx, held))), ..Recording::default() };
            (Arc::new(store), entered, release)
        }

        fn write(&self, size: usize) {
            let held = self.hold_first.lock().unwrap().take();
            if let Some((entered, release)) = held {
                let _ = entered.send(());
                let _ = release.recv();
            }
            self.writes.lock().unwrap().push(size);
        }

        fn refuse(execution_arn: &str) -> Result<(), StoreError> {
            if execution_arn == "bad" { Err(StoreError::Corrupt("refused".to_owned())) } else { Ok(()) }
        }
    }

    impl HistoryStore for Recording {
        fn put_state_machine(&self, record: &StateMachineRecord) -> Result<(), StoreError> {
            self.inner.put_state_machine(record)
        }
        fn state_machines(&self) -> Result<Vec<StateMachineRecord>, StoreError> {
            self.inner.state_machines()
        }
        fn delete_state_machine(&self, arn: &str) -> Result<(), StoreError> {
            self.inner.delete_state_machine(arn)
        }
        fn put_execution(&self, record: &ExecutionRecord) -> Result<(), StoreError> {
            self.inner.put_execution(record)
        }
        fn execution(&self, execution_arn: &str) -> Result<Option<ExecutionRecord>, StoreError> {
            self.inner.execution(execution_arn)
        }
        fn executions(
            &self,
            state_machine_arn: Option<&str>,
            status: Option<ExecutionStatus>,
        ) -> Result<Vec<ExecutionRecord>, StoreError> {
            self.inner.executions(state_machine_arn, status)
        }
        fn append(&self, execution_arn: &str, batch: Batch) -> Result<(), StoreError> {
            self.write(1);
            Recording::refuse(execution_arn)?;
            self.inner.append(execution_arn, batch)
        }
        fn append_all(&self, batches: &[(String, Batch)]) -> Result<(), StoreError> {
            self.write(batches.len());
            batches.iter().try_for_each(|(arn, _)| Recording::refuse(arn))?;
            batches.iter().try_for_each(|(arn, batch)| self.inner.append(arn, batch.clone()))
        }
        fn groups_writes(&self) -> bool {
            true
        }
        fn events(&self, execution_arn: &str) -> Result<Vec<HistoryEvent>, StoreError> {
            self.inner.events(execution_arn)
        }
        fn steps(&self, execution_arn: &str) -> Result<HashMap<String, StepRecord>, StoreError> {
            self.inner.steps(execution_arn)
        }
    }

    fn step(n: usize) -> Batch {
        let record = StepRecord { output: n.to_string(), next: None, assigned: None };
        Batch { steps: vec![(format!("/S#{n}"), record)], ..Batch::default() }
    }

    /// A journal over `store` whose first write (by a caller on another thread) is in progress
    /// and held there; the thread's handle returns that caller's commit.
    fn journal_inside_first_write(
        store: &Arc<Recording>,
        entered: &mpsc::Receiver<()>,
    ) -> (Arc<Journal>, std::thread::JoinHandle<Commit>) {
        let journal = Arc::new(Journal::new(Arc::clone(store) as Arc<dyn HistoryStore>).unwrap());
        let caller = {
            let journal = Arc::clone(&journal);
            std::thread::spawn(move || journal.append("a", step(0)))
        };
        entered.recv().unwrap();
        (journal, caller)
    }

    #[tokio::test]
    async fn a_batch_with_no_write_in_progress_is_written_by_its_caller() {
        let store = Arc::new(Recording::default());
        let journal = Journal::new(Arc::clone(&store) as Arc<dyn HistoryStore>).unwrap();
        for n in 0..3 {
            let commit = journal.append("a", step(n));
            // Written before the commit is awaited, alone.
            assert!(matches!(commit, Commit::Done(Some(Ok(())))));
            commit.await.unwrap();
        }
        assert_eq!(*store.writes.lock().unwrap(), vec![1, 1, 1]);
        assert_eq!(store.steps("a").unwrap().len(), 3);
    }

    #[tokio::test]
    async fn batches_waiting_during_a_write_share_the_next_one_and_keep_their_order() {
        let (store, entered, release) = Recording::holding();
        let (journal, caller) = journal_inside_first_write(&store, &entered);
        // A caller is inside the first write: these 99 batches wait, then share one commit.
        let rest: Vec<Commit> = (1..100).map(|n| journal.append(if n % 2 == 0 { "a" } else { "b" }, step(n))).collect();
        assert!(rest.iter().all(|commit| matches!(commit, Commit::Queued(_))));
        release.send(()).unwrap();
        caller.join().unwrap().await.unwrap();
        for commit in rest {
            commit.await.unwrap();
        }
        assert_eq!(*store.writes.lock().unwrap(), vec![1, 99]);
        let a = store.steps("a").unwrap();
        assert_eq!(a.len(), 50);
        assert_eq!(a["/S#98"].output, "98");
        assert_eq!(store.steps("b").unwrap().len(), 50);
        // The queue is written: the next caller writes its own batch again.
        assert!(matches!(journal.append("c", step(100)), Commit::Done(Some(Ok(())))));
    }

    #[tokio::test]
    async fn a_refused_batch_fails_only_its_own_caller() {
        let (store, entered, release) = Recording::holding();
        let (journal, caller) = journal_inside_first_write(&store, &entered);
        let good = journal.append("a", step(1));
        let bad = journal.append("bad", step(2));
        let also_good = journal.append("b", step(3));
        release.send(()).unwrap();
        caller.join().unwrap().await.unwrap();
        assert!(bad.await.is_err());
        good.await.unwrap();
        also_good.await.unwrap();
        assert_eq!(store.steps("a").unwrap().len(), 2);
        assert_eq!(store.steps("b").unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_store_that_does_not_group_is_written_at_once() {
        let store = Arc::new(MemoryStore::new());
        let journal = Journal::new(Arc::clone(&store) as Arc<dyn HistoryStore>).unwrap();
        let commit = journal.append("a", step(7));
        // Written before the commit is awaited.
        assert_eq!(store.steps("a").unwrap()["/S#7"].output, "7");
        commit.await.unwrap();
    }
}
