//! The connect loop's delays (SPEC §Ingest "Connect loop", §Defaults).

use std::time::Duration;

/// Delays between attempts to open a source: 1 s, doubling, capped at 10 s; back to 1 s after
/// a connection that worked.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    /// The delay before the next attempt.
    next: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Self {
        Self { next: FIRST }
    }

    /// The delay before the next attempt; the one after it doubles, up to the cap.
    pub(crate) fn delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(CAP);
        delay
    }

    /// A connection worked: start again from the first delay.
    pub(crate) fn reset(&mut self) {
        self.next = FIRST;
    }

    /// Sleeps for the next delay.
    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.delay()).await;
    }
}

const FIRST: Duration = Duration::from_secs(1);
const CAP: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::new();
        let secs: Vec<u64> = (0..6).map(|_| backoff.delay().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
        backoff.reset();
        assert_eq!(backoff.delay(), Duration::from_secs(1));
    }
}
