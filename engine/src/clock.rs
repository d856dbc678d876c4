//! Time as the engine sees it: waits, retry delays and timeouts go through a [`Clock`] the caller
//! owns — real time in production, virtual time in tests.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

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

/// Virtual time: sleeping advances the clock at once instead of waiting.
///
/// By default timers never fire (tasks and executions never time out): work takes no virtual
/// time, and sleeps of concurrent branches add up instead of overlapping, so virtual time would
/// reach a timer that real time would not. [`InstantClock::with_timers`] makes timers fire when
/// sleeps move virtual time past them, for tests of timeouts and heartbeats whose tasks advance
/// the clock themselves (with [`Clock::sleep`]).
#[derive(Debug)]
pub struct InstantClock {
    now: watch::Sender<DateTime<Utc>>,
    timers_fire: bool,
}

impl InstantClock {
    /// A virtual clock starting at `start`.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        InstantClock { now: watch::Sender::new(start), timers_fire: false }
    }

    /// A virtual clock starting at the current wall-clock time.
    pub fn new() -> Self {
        InstantClock::starting_at(Utc::now())
    }

    /// The same clock, whose timers fire once virtual time reaches them.
    pub fn with_timers(mut self) -> Self {
        self.timers_fire = true;
        self
    }

    /// `now + duration`, or `None` beyond the calendar.
    fn after(now: DateTime<Utc>, duration: Duration) -> Option<DateTime<Utc>> {
        now.checked_add_signed(chrono::Duration::from_std(duration).ok()?)
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
        *self.now.borrow()
    }

    async fn sleep(&self, duration: Duration) {
        self.now.send_modify(|now| {
            if let Some(later) = InstantClock::after(*now, duration) {
                *now = later;
            }
        });
        tokio::task::yield_now().await;
    }

    async fn timer(&self, duration: Duration) {
        let deadline = InstantClock::after(self.now(), duration).filter(|_| self.timers_fire);
        let Some(deadline) = deadline else {
            return std::future::pending().await;
        };
        let mut now = self.now.subscribe();
        // The sender lives as long as `self`: waiting fails only if the clock is gone.
        if now.wait_for(|now| *now >= deadline).await.is_err() {
            std::future::pending::<()>().await;
        }
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

    #[tokio::test]
    async fn instant_clock_timers_fire_only_when_asked_and_when_virtual_time_reaches_them() {
        let silent = InstantClock::new();
        let timer = silent.timer(Duration::from_secs(5));
        tokio::pin!(timer);
        silent.sleep(Duration::from_secs(10)).await;
        assert!(futures::poll!(timer.as_mut()).is_pending());

        let clock = InstantClock::new().with_timers();
        let timer = clock.timer(Duration::from_secs(5));
        tokio::pin!(timer);
        assert!(futures::poll!(timer.as_mut()).is_pending());
        clock.sleep(Duration::from_secs(4)).await;
        assert!(futures::poll!(timer.as_mut()).is_pending());
        clock.sleep(Duration::from_secs(1)).await;
        assert!(futures::poll!(timer.as_mut()).is_ready());
    }
}
