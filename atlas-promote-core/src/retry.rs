//! How a backend retries requests, and how long one call may take.

use std::time::{Duration, Instant};

/// How a backend retries a request and how long one call may take: one
/// type for every adapter (both atlas-promote backends re-export it as
/// their own `RetrySettings`).
///
/// A request is retried only when its error is temporary and sending it
/// again cannot do something twice (a read, or a write the server refused
/// unread). The wait before a retry is the server's (`Retry-After`, a rate
/// limit's reset) when it gave one, else an exponential backoff with jitter.
/// A call — its retries and waits included — ends at its deadline with a
/// temporary error, so a stalled server holds one call up at most that long.
///
/// ```
/// use std::time::Duration;
/// use atlas_promote_core::RetrySettings;
///
/// let patient = RetrySettings::default()
///     .with_max_retries(5)
///     .with_backoff(Duration::from_millis(200), Duration::from_secs(5))
///     .with_max_wait(Duration::from_secs(20))
///     .with_deadline(Duration::from_secs(45));
/// assert_ne!(patient, RetrySettings::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySettings {
    max_retries: usize,
    min_delay: Duration,
    max_delay: Duration,
    max_wait: Duration,
    deadline: Duration,
}

impl Default for RetrySettings {
    /// 3 retries, backoff from 100 ms doubling to 2 s (with jitter), a
    /// server's wait honoured up to 30 s, 60 s for a whole call.
    fn default() -> Self {
        Self {
            max_retries: 3,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_wait: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetrySettings {
    /// Retries after the first attempt (0: never retry).
    pub fn with_max_retries(mut self, retries: usize) -> Self {
        self.max_retries = retries;
        self
    }

    /// The first backoff delay; it doubles on each retry (with jitter) up to `max`.
    pub fn with_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.min_delay = first;
        self.max_delay = max.max(first);
        self
    }

    /// The longest wait a server may ask for (`Retry-After`, a rate limit's
    /// reset) that is honoured; a longer one ends the call at once with a
    /// temporary error, for the caller (the engine) to try again later.
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// The longest one call may take, retries and waits included.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Retries after the first attempt.
    pub fn max_retries(&self) -> usize {
        self.max_retries
    }

    /// The first backoff delay, and the longest.
    pub fn backoff(&self) -> (Duration, Duration) {
        (self.min_delay, self.max_delay)
    }

    /// The longest wait a server may ask for that is honoured.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// The longest one call may take.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The wait before the next retry of a call that started at `started`:
    /// the server's `asked` wait if it gave one, else `backoff` (the
    /// adapter's next backoff delay); `None` (no retry) when the server asks
    /// for more than the longest wait, or the wait would run past the call's
    /// deadline.
    pub fn wait(&self, started: Instant, backoff: Duration, asked: Option<Duration>) -> Option<Duration> {
        let wait = match asked {
            Some(asked) if asked > self.max_wait => return None,
            Some(asked) => asked,
            None => backoff,
        };
        (started.elapsed() + wait < self.deadline).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_waits_what_the_server_asks_within_the_longest_wait_and_the_deadline() {
        let s = RetrySettings::default().with_max_wait(Duration::from_secs(10)).with_deadline(Duration::from_secs(20));
        let now = Instant::now();
        let backoff = Duration::from_millis(150);
        assert_eq!(s.wait(now, backoff, None), Some(backoff));
        assert_eq!(s.wait(now, backoff, Some(Duration::from_secs(7))), Some(Duration::from_secs(7)));
        assert_eq!(s.wait(now, backoff, Some(Duration::from_secs(11))), None, "longer than the longest wait");
        let late = now - Duration::from_secs(15);
        assert_eq!(s.wait(late, backoff, Some(Duration::from_secs(6))), None, "past the deadline");
        assert_eq!(s.wait(late, backoff, None), Some(backoff));
    }
}
