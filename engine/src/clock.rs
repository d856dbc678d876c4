//! Time as the engine sees it: waits, retry delays and timeouts go through a [`Clock`] the caller
//! owns — real time in production, virtual time in tests.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A source of time and delays.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Waits for `duration` (Wait states, retry intervals).
    async fn sleep(&self, duration: Duration);
    /// Completes when `duration` has passed while other work runs (task and execution
    /// timeouts). A virtual clock whose work takes no time may never complete it.
    async fn timer(&self, duration: Duration);
}

/// Wall-clock time with tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

#[async_trait]
impl Clock for RealClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    async fn timer(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Virtual time: sleeping advances the clock at once instead of waiting. Work takes no virtual
/// time, so timers never fire (tasks never time out).
#[derive(Debug)]
pub struct InstantClock {
    now: Mutex<DateTime<Utc>>,
}

impl InstantClock {
    /// A virtual clock starting at `start`.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        InstantClock { now: Mutex::new(start) }
    }

    /// A virtual clock starting at the current wall-clock time.
    pub fn new() -> Self {
        InstantClock::starting_at(Utc::now())
    }

    fn advance(&self, duration: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::Duration::from_std(duration).unwrap_or(chrono::TimeDelta::MAX);
    }
}

impl Default for InstantClock {
    fn default() -> Self {
        InstantClock::new()
    }
}

#[async_trait]
impl Clock for InstantClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
        tokio::task::yield_now().await;
    }

    async fn timer(&self, _duration: Duration) {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn instant_clock_advances_without_waiting() {
        let clock = InstantClock::new();
        let before = clock.now();
        let started = std::time::Instant::now();
        clock.sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now() - before, chrono::Duration::seconds(3600));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
