//! Group commit: the writes of every running execution go through one [`Journal`].
//!
//! For a store whose writes are costly ([`HistoryStore::groups_writes`], SQLite: one commit per
//! write), the journal owns a writer thread. Callers queue a batch and await its commit; the
//! thread takes every batch waiting at that moment and writes them in one transaction, so that
//! many executions share one commit while each caller still learns when its own batch is
//! durable. Batches are written in the order they were queued, so a caller that saw its batch
//! committed knows that every batch queued before it (by any execution) is durable too.
//!
//! A lone execution has no one to share a commit with: when it is the only one open and the
//! writer has nothing queued, its batch is written on the caller's own thread, which spares the
//! two thread hand-offs (to the writer and back) that made most of a lone StartExecution's
//! latency. With more executions open the batch goes to the writer, even when the writer is
//! idle: writing every batch at once as it comes commits each alone, which halved the
//! throughput of many executions started together (docs/engine.md).
//!
//! For other stores (in memory) a batch is written at once, on the caller's thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::store::{Batch, HistoryStore, StoreError};

/// The most batches written in one transaction: bounds the transaction while keeping its cost
/// per batch low.
const MAX_GROUP: usize = 1024;

/// Where executions write their history.
pub(crate) struct Journal {
    store: Arc<dyn HistoryStore>,
    /// The writer thread, for stores that group writes.
    writer: Option<Writer>,
    /// Executions open now (see [`Journal::open`]).
    open: Arc<AtomicUsize>,
}

struct Writer {
    queue: mpsc::Sender<Queued>,
    /// Batches queued and not yet committed.
    queued: Arc<AtomicUsize>,
    /// Held by whoever writes to the store: the writer thread or a lone caller.
    writing: Arc<Mutex<()>>,
}

/// Counts an execution as open while it lives (see [`Journal::open`]).
pub(crate) struct OpenExecution(Arc<AtomicUsize>);

impl Drop for OpenExecution {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Queued {
    execution_arn: String,
    batch: Batch,
    committed: Waiter,
}

/// Where the writer answers the caller of one batch.
type Waiter = oneshot::Sender<Result<(), StoreError>>;

impl Journal {
    /// A journal over `store`, with a writer thread when the store groups writes.
    pub fn new(store: Arc<dyn HistoryStore>) -> std::io::Result<Journal> {
        let writer = if store.groups_writes() {
            let (sender, receiver) = mpsc::channel();
            let writer = Writer { queue: sender, queued: Arc::default(), writing: Arc::default() };
            let (thread_store, queued, writing) =
                (Arc::clone(&store), Arc::clone(&writer.queued), Arc::clone(&writer.writing));
            // The thread ends when the journal (and with it the sender) is dropped.
            std::thread::Builder::new()
                .name("imgflow-journal".to_owned())
                .spawn(move || write_groups(thread_store.as_ref(), &receiver, &queued, &writing))?;
            Some(writer)
        } else {
            None
        };
        Ok(Journal { store, writer, open: Arc::default() })
    }

    /// Counts an execution as open until the returned guard is dropped: from before its first
    /// batch until after its last.
    pub fn open(&self) -> OpenExecution {
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenExecution(Arc::clone(&self.open))
    }

    /// Writes a batch of one execution. The batch is queued (or written) before this returns,
    /// so batches keep the order of the calls; the returned future completes when it is
    /// durable.
    pub fn append(&self, execution_arn: &str, batch: Batch) -> Commit {
        let Some(writer) = &self.writer else {
            return Commit::Done(Some(self.store.append(execution_arn, batch)));
        };
        if self.open.load(Ordering::Relaxed) <= 1
            && let Ok(_writing) = writer.writing.try_lock()
            // Everything queued before is committed (the writer counts a group down before it
            // lets go of `writing`), and whatever is queued from now on waits for this write.
            && writer.queued.load(Ordering::Acquire) == 0
        {
            return Commit::Done(Some(self.store.append(execution_arn, batch)));
        }
        let (committed, receiver) = oneshot::channel();
        let queued = Queued { execution_arn: execution_arn.to_owned(), batch, committed };
        writer.queued.fetch_add(1, Ordering::AcqRel);
        match writer.queue.send(queued) {
            Ok(()) => Commit::Queued(receiver),
            // The thread is gone (it panicked): write here rather than lose the batch.
            Err(mpsc::SendError(queued)) => {
                writer.queued.fetch_sub(1, Ordering::AcqRel);
                Commit::Done(Some(self.store.append(&queued.execution_arn, queued.batch)))
            }
        }
    }
}

/// The writer thread: one transaction for every batch waiting, then the next group.
fn write_groups(store: &dyn HistoryStore, queue: &mpsc::Receiver<Queued>, queued: &AtomicUsize, writing: &Mutex<()>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let (batches, waiters): (Vec<(String, Batch)>, Vec<Waiter>) =
            group.into_iter().map(|q| ((q.execution_arn, q.batch), q.committed)).unzip();
        let answers: Vec<Result<(), StoreError>> = {
            let _writing = writing.lock().unwrap_or_else(|p| p.into_inner());
            let answers = match store.append_all(&batches) {
                Ok(()) => batches.iter().map(|_| Ok(())).collect(),
                // The transaction was rolled back: write each batch alone, so that one bad batch
                // fails only its own caller.
                Err(_) => {
                    batches.into_iter().map(|(execution_arn, batch)| store.append(&execution_arn, batch)).collect()
                }
            };
            queued.fetch_sub(waiters.len(), Ordering::AcqRel);
            answers
        };
        for (waiter, answer) in waiters.into_iter().zip(answers) {
            // A caller that stopped waiting (its execution was dropped) needs no answer.
            let _ = waiter.send(answer);
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
    use std::sync::Mutex;

    use super::*;
    use crate::history::HistoryEvent;
    use crate::store::{ExecutionRecord, ExecutionStatus, MemoryStore, StateMachineRecord, StepRecord};

    /// A grouping store in memory that records the size of each group, holds the writer inside
    /// its first write (telling when it is there) until released, and refuses every batch of
    /// the execution `bad`.
    #[derive(Default)]
    struct Recording {
        inner: MemoryStore,
        groups: Mutex<Vec<usize>>,
        hold_first: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
    }

    impl Recording {
        /// The store, a receiver told when the writer is held and a sender that releases it.
        fn holding() -> (Arc<Recording>, mpsc::Receiver<()>, mpsc::Sender<()>) {
            let (entered_tx, entered) = mpsc::channel();
            let (release, held) = mpsc::channel();
            let store = Recording { hold_first: Mutex::new(Some((entered_tx, held))), ..Recording::default() };
            (Arc::new(store), entered, release)
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
            Recording::refuse(execution_arn)?;
            self.inner.append(execution_arn, batch)
        }
        fn append_all(&self, batches: &[(String, Batch)]) -> Result<(), StoreError> {
            if let Some((entered, release)) = self.hold_first.lock().unwrap().take() {
                let _ = entered.send(());
                let _ = release.recv();
            }
            self.groups.lock().unwrap().push(batches.len());
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

    /// A journal over a [`Recording`] store with two executions open (so their batches go to the
    /// writer thread), whose writer is inside the commit of `a`'s first batch until `release`.
    struct Held {
        store: Arc<Recording>,
        journal: Journal,
        open: [OpenExecution; 2],
        first: Commit,
        release: mpsc::Sender<()>,
    }

    fn held() -> Held {
        let (store, entered, release) = Recording::holding();
        let journal = Journal::new(Arc::clone(&store) as Arc<dyn HistoryStore>).unwrap();
        let open = [journal.open(), journal.open()];
        let first = journal.append("a", step(0));
        entered.recv().unwrap();
        Held { store, journal, open, first, release }
    }

    #[tokio::test]
    async fn batches_waiting_during_a_commit_share_the_next_one_and_keep_their_order() {
        let Held { store, journal, open: _open, first, release } = held();
        // The writer is inside the first commit: these 99 batches wait for the next one.
        let rest: Vec<Commit> = (1..100).map(|n| journal.append(if n % 2 == 0 { "a" } else { "b" }, step(n))).collect();
        release.send(()).unwrap();
        first.await.unwrap();
        for commit in rest {
            commit.await.unwrap();
        }
        assert_eq!(*store.groups.lock().unwrap(), vec![1, 99]);
        let a = store.steps("a").unwrap();
        assert_eq!(a.len(), 50);
        assert_eq!(a["/S#98"].output, "98");
        assert_eq!(store.steps("b").unwrap().len(), 50);
    }

    #[tokio::test]
    async fn a_refused_batch_fails_only_its_own_caller() {
        let Held { store, journal, open: _open, first, release } = held();
        let good = journal.append("a", step(1));
        let bad = journal.append("bad", step(2));
        let also_good = journal.append("b", step(3));
        release.send(()).unwrap();
        first.await.unwrap();
        assert!(bad.await.is_err());
        good.await.unwrap();
        also_good.await.unwrap();
        assert_eq!(store.steps("a").unwrap().len(), 2);
        assert_eq!(store.steps("b").unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_lone_execution_writes_on_its_own_thread_unless_the_writer_is_busy() {
        // Two open: the first batch went to the writer, which holds it.
        let Held { store, journal, open, first, release } = held();
        drop(open);
        let _lone = journal.open();
        // Alone now, but the writer is busy: this one waits for it, in order.
        let second = journal.append("a", step(1));
        assert!(matches!(second, Commit::Queued(_)));
        release.send(()).unwrap();
        first.await.unwrap();
        second.await.unwrap();
        // Alone and the writer idle: written before append returns, not by the writer.
        let third = journal.append("a", step(2));
        assert!(matches!(third, Commit::Done(_)));
        assert_eq!(store.steps("a").unwrap()["/S#2"].output, "2");
        third.await.unwrap();
        assert_eq!(*store.groups.lock().unwrap(), vec![1, 1]);
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
