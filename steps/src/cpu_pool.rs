//! The threads that decode, resize and encode images.
//!
//! Rendering a photo allocates large buffers (coefficients, pixels, the resized copies). glibc
//! keeps a separate heap (arena) per thread, so freed buffers are reused only by the thread
//! that freed them. On tokio's blocking pool a render lands on whichever of its many threads is
//! idle, and a thread whose heap has not held a photo yet maps and zeroes every page afresh:
//! in the twin that was thousands of page faults per batch, much of what it spent beyond the
//! steps themselves. Here a fixed set of threads, one per core, runs every render, so their
//! heaps stay warm (with [`crate::memory::reuse_freed_memory`]).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use tokio::sync::oneshot;

use crate::error::StepError;

/// The image threads are named this, then their index.
pub const THREAD_NAME_PREFIX: &str = "imgflow-cpu-";

type Job = Box<dyn FnOnce() + Send>;

/// The pool's queue, started on first use; an error when its threads could not be started.
fn queue() -> Result<&'static mpsc::Sender<Job>, StepError> {
    static QUEUE: OnceLock<Result<mpsc::Sender<Job>, String>> = OnceLock::new();
    QUEUE.get_or_init(start).as_ref().map_err(|error| StepError::InternalError(error.clone()))
}

fn start() -> Result<mpsc::Sender<Job>, String> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for index in 0..threads {
        let receiver = Arc::clone(&receiver);
        std::thread::Builder::new()
            .name(format!("{THREAD_NAME_PREFIX}{index}"))
            .spawn(move || {
                loop {
                    // The lock is held only while waiting for a job, not while running it.
                    let job = receiver.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match job {
                        Ok(job) => job(),
                        Err(mpsc::RecvError) => return,
                    }
                }
            })
            .map_err(|error| format!("cannot start the image threads: {error}"))?;
    }
    Ok(sender)
}

/// Runs CPU-bound `work` on the pool and waits for it without blocking the async runtime. Jobs
/// beyond the pool's size wait their turn in order. A panic in `work` is the caller's
/// `InternalError`; the thread goes on with the next job.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, StepError> {
    let (answer, answered) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = answer.send(std::panic::catch_unwind(AssertUnwindSafe(work)));
    });
    queue()?.send(job).map_err(|_| StepError::InternalError("the image threads stopped".to_owned()))?;
    match answered.await {
        Ok(Ok(output)) => Ok(output),
        Ok(Err(panic)) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(StepError::InternalError(format!("the image work panicked: {message}")))
        }
        Err(_) => Err(StepError::InternalError("the image threads stopped".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_the_pool_threads_and_a_panic_is_an_internal_error() {
        let name = run(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
        assert!(name.is_some_and(|n| n.starts_with(THREAD_NAME_PREFIX)));
        let panicked = run(|| -> u32 { panic!("bad pixels") }).await;
        assert!(matches!(panicked, Err(StepError::InternalError(m)) if m.contains("bad pixels")));
        // The thread that caught the panic still serves.
        let results = futures::future::join_all((0..8).map(|n| run(move || n * 2))).await;
        assert_eq!(
            results.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            (0..8).map(|n| n * 2).collect::<Vec<_>>()
        );
    }
}
